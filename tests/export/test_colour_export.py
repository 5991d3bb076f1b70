"""Colour generators after training: ONNX fp32 / fp16 / int8 and AOTInductor exports of RGB
32 and 64 px generators (dcgan and resnet, tiny widths) checked against eager PyTorch (int8:
its quality gate on the run's own labelled or unlabelled folder), the image shape in their
metadata and the runtime's, the torch-free runtime and bulk shards of a
colour model (channels-last pixels, RGB PNGs), and RGB grids of a run trained on a colour
folder (plain, latent arithmetic with its blank tiles, and from its ONNX export)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from gan_accel.export import bulk
from gan_accel.export.aoti import Pt2Generator, export_pt2
from gan_accel.export.metadata import ModelMeta
from gan_accel.export.onnx_export import (
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    ExportError,
    export_generator,
)
from gan_accel.export.quantize import Gate, quantize_generator
from gan_accel.export.runtime import ModelFileError, OnnxGenerator
from model_factory import colour_generator
from PIL import Image

from gan_accel.checkpoints import load_trained
from gan_accel.cli import export as export_cli
from gan_accel.cli import sample
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import build_variant, recipe_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from image_folders import rgb_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WIDTH = 4  # --ngf / --ndf: tiny nets, the paper's layer structure
# (variant, architecture, side): two architectures at both colour sizes
COLOUR = [("dcgan", "dcgan", 32), ("dcgan", "dcgan", 64), ("wgan-gp", "resnet", 32),
          ("wgan-gp", "resnet", 64)]
FAST = {("dcgan", "dcgan", 32, False)}  # the rest take over 5 s here: slow


def colour_variant(model: str, arch: str, side: int, seed: int = 0):
    """A tiny colour variant whose G makes varied images with BatchNorm statistics of its
    own: the papers' N(0, 0.02) init at width 4 gives near-constant images (every parity
    check would pass on them), so the layers take PyTorch's default init and the running
    statistics come from a few train-mode batches."""
    torch.manual_seed(seed)
    cfg = recipe_config(model, arch=arch, resolution=side, channels=3, ngf=WIDTH, ndf=WIDTH)
    variant = build_variant(cfg)
    for m in variant.G.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear):
            m.reset_parameters()
    with torch.no_grad():
        for _ in range(3):
            variant.G.train()(**variant.latent.sample(16, "cpu"))
    return variant.eval()


def eager(variant, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return variant.G(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()


def assert_colour(images: np.ndarray, side: int) -> None:
    """[n, 3, side, side] with channels that differ (a colour image, not grey or constant)."""
    assert images.shape[1:] == (3, side, side), images.shape
    assert np.isfinite(images).all()
    assert images.std() > 1e-3, "constant images would make any parity check pass"
    assert np.abs(images[:, 0] - images[:, 1]).max() > 1e-3, "the channels are identical"


def export_params():
    for model, arch, side in COLOUR:
        for fp16 in (False, True):
            marks = () if (model, arch, side, fp16) in FAST else (pytest.mark.slow,)
            yield pytest.param(model, arch, side, fp16, marks=marks,
                               id=f"{arch}-{side}-{'fp16' if fp16 else 'fp32'}")


@pytest.mark.parametrize("model,arch,side,fp16", list(export_params()))
def test_colour_onnx_export_matches_eager(tmp_path, model, arch, side, fp16):
    variant = colour_variant(model, arch, side)
    path = tmp_path / "g.onnx"
    report = export_generator(variant, path, fp16=fp16)
    tolerance = FP16_TOLERANCE[str(variant.output_range)] if fp16 else FP32_TOLERANCE
    assert set(report["max_abs_err"]) == {1, 7, 64}  # the export's own parity check ran
    assert max(report["max_abs_err"].values()) <= tolerance
    assert report["image_shape"] == f"3x{side}x{side}"
    proto = onnx.load(str(path))
    assert f"[batch, 3, {side}, {side}]" in proto.doc_string
    dims = [d.dim_value or d.dim_param for d in
            proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, side, side]
    with OnnxGenerator(path, threads=1) as gen:
        assert gen.image_shape == (3, side, side)
        assert gen.meta.image_shape == (3, side, side)
        feeds = gen.latent(5, seed=3)
        got = gen.run(**feeds)
    want = eager(variant, feeds)
    assert_colour(want, side)
    assert np.abs(got - want).max() <= tolerance


@pytest.mark.slow  # AOTInductor compiles C++: ~30 s a package on this machine
@pytest.mark.parametrize("model,arch,side", [("dcgan", "dcgan", 64), ("wgan-gp", "resnet", 32)],
                         ids=["dcgan-64", "resnet-32"])
def test_colour_pt2_export_matches_eager(tmp_path, model, arch, side):
    variant = colour_variant(model, arch, side)
    path = tmp_path / "g.pt2"
    torch.set_num_threads(1)
    report = export_pt2(variant, path)
    assert set(report["max_abs_err"]) == {1, 7, 64}
    assert max(report["max_abs_err"].values()) <= FP32_TOLERANCE
    assert report["image_shape"] == f"3x{side}x{side}"
    gen = Pt2Generator(path)
    assert gen.image_shape == (3, side, side)
    feeds = gen.latent(5, seed=3)
    want = eager(variant, feeds)
    assert_colour(want, side)
    assert np.abs(gen.run(**feeds) - want).max() <= FP32_TOLERANCE


# ------------------------------------------------------------------------ runtime, pixels


def test_to_uint8_keeps_grey_shards_and_puts_colour_channels_last():
    rng = np.random.default_rng(0)
    grey = rng.uniform(-1, 1, (2, 1, 5, 4)).astype(np.float32)
    colour = rng.uniform(-1, 1, (2, 3, 5, 4)).astype(np.float32)
    assert bulk.to_uint8(grey, "symmetric").shape == (2, 5, 4)  # as shards always held
    u8 = bulk.to_uint8(colour, "symmetric")
    assert u8.shape == (2, 5, 4, 3) and u8.flags.c_contiguous
    for c in range(3):  # each channel quantised exactly as a grey image would be
        np.testing.assert_array_equal(u8[..., c], bulk.to_uint8(colour[:, c:c + 1], "symmetric"))
    assert bulk.pixel_shape((1, 28, 28)) == (28, 28)
    assert bulk.pixel_shape((3, 64, 64)) == (64, 64, 3)


def test_metadata_carries_the_image_shape():
    meta = ModelMeta(variant="v", z_dim=4, image_shape=(3, 64, 64))
    props = meta.to_props()
    assert props["image_shape"] == "3x64x64"
    assert ModelMeta.from_props(props).image_shape == (3, 64, 64)
    older = {k: v for k, v in props.items() if k != "image_shape"}  # an older export
    assert ModelMeta.from_props(older).image_shape is None
    for bad in ("4x32x32", "3x32", "3x0x32"):
        with pytest.raises(ValueError, match="image"):
            ModelMeta.from_props({**props, "image_shape": bad}, "g.onnx")


def test_runtime_takes_the_shape_from_the_graph_and_refuses_a_contradiction(tmp_path):
    path = colour_generator(tmp_path / "colour.onnx", size=32)
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["image_shape"] == ""  # built without one: like an export older than the field

    def with_shape(value: str | None, name: str) -> Path:
        kept = {**props, "image_shape": value} if value is not None else {
            k: v for k, v in props.items() if k != "image_shape"}
        del model.metadata_props[:]
        for key, v in kept.items():
            model.metadata_props.add(key=key, value=v)
        onnx.save(model, str(tmp_path / name))
        return tmp_path / name

    with OnnxGenerator(with_shape(None, "older.onnx"), threads=1) as gen:
        assert gen.meta.image_shape == (3, 32, 32)  # read from the graph's output
        assert gen.sample(2, seed=0).shape == (2, 3, 32, 32)
    with_shape("1x28x28", "lying.onnx")
    with pytest.raises(ModelFileError, match=r"makes \[3, 32, 32\] images but its metadata "
                                             r"says \[1, 28, 28\]"):
        OnnxGenerator(tmp_path / "lying.onnx", threads=1)


TORCH_FREE_BULK = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from pathlib import Path
import numpy as np
from gan_accel.export import OnnxGenerator, bulk
gen = OnnxGenerator(sys.argv[1], threads=1)
out = Path(sys.argv[2])
plan = bulk.BulkPlan(n=30, seed=4, shard_size=16, batch=8)
ident = bulk.identity(plan, bulk.file_sha256(sys.argv[1]), "onnxruntime")
bulk.write_shards(gen, out, plan, bulk.prepare_out_dir(out, plan, ident), ident, progress=False)
np.save(out / "sample.npy", gen.sample(3, seed=1))
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "torch" and sys.modules[m])
print("torch-free:", not loaded, loaded, gen.image_shape)
"""


def test_torch_free_runtime_and_bulk_shards_of_a_colour_model(tmp_path):
    path = colour_generator(tmp_path / "colour.onnx", size=32)
    out = tmp_path / "shards"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(TORCH_FREE_BULK), str(path),
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch-free: True [] (3, 32, 32)" in proc.stdout, proc.stdout
    with OnnxGenerator(path, threads=1) as gen:
        np.testing.assert_allclose(np.load(out / "sample.npy"), gen.sample(3, seed=1),
                                   atol=1e-6, rtol=0)
        feeds = bulk.latents(gen.meta.latent, 4, 0, 30)
        want = bulk.to_uint8(gen.run(**feeds), "unit")  # [30, 32, 32, 3]
    shards = bulk.read_shards(out)
    assert shards["images"].shape == (30, 32, 32, 3) and shards["images"].dtype == np.uint8
    np.testing.assert_array_equal(shards["images"], want)
    manifest = json.loads((out / bulk.MANIFEST).read_text())
    assert manifest["image_shape"] == [3, 32, 32] and manifest["pixels"] == [32, 32, 3]


def test_png_shards_of_a_colour_model_are_rgb(tmp_path):
    path = colour_generator(tmp_path / "colour.onnx", size=32)
    npz, png = tmp_path / "npz", tmp_path / "png"
    for out, fmt in ((npz, "npz"), (png, "png")):
        code = run_cli(sample.main, ["--onnx", str(path), "--n", "12", "--out", str(out),
                                     "--shard-size", "5", "--shard-format", fmt,
                                     "--no-progress", "--threads", "1"])
        assert code == 0
    images = bulk.read_shards(npz)["images"]  # [12, 32, 32, 3]
    files = sorted(png.glob("shard-*/*.png"))
    assert len(files) == 12
    for i, f in enumerate(files):
        with Image.open(f) as im:
            assert im.mode == "RGB" and im.size == (32, 32)
            np.testing.assert_array_equal(np.asarray(im), images[i])


# ---------------------------------------------------------------- a run on a colour folder


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory) -> Path:
    """One training step of a width-4 DCGAN on 32 px RGB pictures (a tiny random folder)."""
    root = tmp_path_factory.mktemp("colour-run")
    folder = rgb_folder(root / "images", 3, classes=("a", "b"))
    cfg = recipe_config("dcgan", dataset="folder", data_dir=str(folder), arch="dcgan",
                        resolution=32, channels=3, ngf=WIDTH, ndf=WIDTH, batch_size=4,
                        max_steps=1, out=str(root / "run"), progress=False, kernels="torch",
                        ema=0, seed=1)
    Trainer(cfg, log=lambda *_: None).fit()
    return root / "run"


def rgb_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB", im.mode
        return np.asarray(im)


def test_grids_of_a_colour_run_are_rgb(colour_run, tmp_path):
    grid = tmp_path / "grid.png"
    assert run_cli(sample.main, ["--checkpoint", str(colour_run), "--n", "4",
                                 "--out", str(grid)]) == 0
    pixels = rgb_pixels(grid)
    # 2 x 2 tiles of 32 px upscaled 2x, with 2 px padding
    assert pixels.shape == (2 * (64 + 2) + 2, 2 * (64 + 2) + 2, 3)
    assert (pixels[..., 0] != pixels[..., 1]).any(), "a colour run drew a grey grid"
    arith = tmp_path / "arithmetic.png"
    assert run_cli(sample.main, ["--checkpoint", str(colour_run), "--n", "6", "--arithmetic",
                                 "0,1 - 2 + 3", "--out", str(arith)]) == 0
    pixels = rgb_pixels(arith)  # rows of 4: members, blank (grey) tiles, the mean
    assert pixels.shape == (4 * (64 + 2) + 2, 4 * (64 + 2) + 2, 3)
    tile = [2 + k * 66 for k in range(4)]  # where row / column k starts
    blank = pixels[tile[1]:tile[1] + 64, tile[2]:tile[2] + 64]  # row 1 ("- 2"), column 2
    assert (blank == blank[0, 0]).all() and len(set(blank[0, 0])) == 1  # grey


@pytest.mark.slow  # an ONNX export and two grids: ~6 s here
def test_onnx_grid_of_a_colour_run_matches_its_checkpoint_grid(colour_run, tmp_path):
    model = tmp_path / "g.onnx"
    assert run_cli(export_cli.main, ["--checkpoint", str(colour_run), "--out",
                                     str(model)]) == 0
    assert OnnxGenerator(model, threads=1).image_shape == (3, 32, 32)
    grids = {}
    for src in ("--checkpoint", "--onnx"):
        grids[src] = tmp_path / f"{src[2:]}.png"
        path = colour_run if src == "--checkpoint" else model
        assert run_cli(sample.main, [src, str(path), "--n", "9", "--seed", "2",
                                     "--out", str(grids[src])]) == 0
    a, b = (rgb_pixels(p).astype(int) for p in grids.values())
    assert a.shape == b.shape and np.abs(a - b).max() <= 1


# ------------------------------------------------------------------------------ int8


def folder_run(root: Path, classes: tuple[str, ...], arch: str, model: str, side: int) -> Path:
    """One training step of a width-4 ``arch`` at ``side`` px RGB on 24 random pictures
    (``classes`` empty: a flat, unlabelled folder)."""
    folder = rgb_folder(root / "images", 24 // max(1, len(classes)), classes=classes)
    cfg = recipe_config(model, dataset="folder", data_dir=str(folder), arch=arch,
                        resolution=side, channels=3, ngf=WIDTH, ndf=WIDTH, batch_size=4,
                        max_steps=1, out=str(root / "run"), progress=False, kernels="torch",
                        ema=0, seed=1)
    Trainer(cfg, log=lambda *_: None).fit()
    return root / "run"


@pytest.mark.slow  # training, the folder's classifier, calibration and the gate: ~10 s
@pytest.mark.parametrize("classes,arch,model,side,space", [
    (("a", "b"), "dcgan", "dcgan", 64, "classifier-folder-"),
    ((), "resnet", "wgan-gp", 32, "random-cnn-seed0")], ids=["labelled-dcgan-64",
                                                             "unlabelled-resnet-32"])
def test_int8_export_of_a_colour_run_is_gated_on_its_own_images(tmp_path, capsys, classes,
                                                                arch, model, side, space):
    run = folder_run(tmp_path, classes, arch, model, side)
    out = tmp_path / "g-int8.onnx"
    assert run_cli(export_cli.main, ["--checkpoint", str(run), "--format", "int8",
                                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # 24 images: the gate compares 12 samples (each against a floor of 12 other real images)
    assert f"quality gate passed on 12 samples in {space}" in text, text
    if not classes:
        assert "no classes in random-cnn-seed0 (unlabelled data): the FID change alone" in text
    with OnnxGenerator(out, threads=1) as gen:
        assert gen.meta.dtype == "int8" and gen.image_shape == (3, side, side)
        assert "agreement n/a" in gen.meta.quantization["gate"] or classes
        feeds = gen.latent(8, seed=5)
        got = gen.run(**feeds)
    variant, _ = load_trained(run)
    want = eager(variant.eval(), feeds)
    assert_colour(want, side)
    assert np.abs(got - want).max() < 0.05  # int8 steps of a [-1, 1] or [0, 1] image


def test_int8_gate_on_other_images_is_refused_before_the_work(tmp_path):
    variant = colour_variant("dcgan", "dcgan", 32)
    out = tmp_path / "g-int8.onnx"
    with pytest.raises(ExportError, match="the dcgan generator makes 3x32x32 images but the "
                                          "gate's mnist-5k images are 1x28x28"):
        quantize_generator(variant, out, gate=Gate(samples=100))  # MNIST at 28 px
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers()
                    or not torch.cuda.is_available(),
                    reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_graph_output_buffer_takes_the_models_shape(tmp_path):
    """The CUDA graph's output lives in a buffer allocated from the model's image shape."""
    path = colour_generator(tmp_path / "colour64.onnx", size=64)
    gen = OnnxGenerator(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
                        cuda_graph_batch=8)
    cpu = OnnxGenerator(path, providers=["CPUExecutionProvider"])
    for seed in (0, 1):  # capture, then replay with new inputs
        z = cpu.latent(8, seed=seed)["z"]
        got = gen.run(z)
        assert got.shape == (8, 3, 64, 64)
        np.testing.assert_allclose(got, cpu.run(z), atol=1e-4)
