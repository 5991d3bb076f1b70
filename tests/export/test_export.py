"""ONNX export: every variant's generator, fp16, metadata, graph hygiene, and the CLIs
(``python -m gan_accel.export``, ``python -m gan_accel.sample --onnx``)."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from gan_accel.export import onnx_export
from gan_accel.export.conv_form import ConvTransposeAsLinear
from gan_accel.export.onnx_export import (
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    ChannelAffine,
    ExportError,
    export_generator,
    prepare_generator,
)
from gan_accel.export.runtime import CPU, OnnxGenerator
from helpers import run_module, tiny_mnist
from PIL import Image
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from gan_accel.checkpoints import load_checkpoint, resolve_checkpoint, save_checkpoint
from gan_accel.cli import export as export_cli
from gan_accel.cli import sample
from gan_accel.errors import UserError, run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import VARIANTS, build_variant, recipe_config

NAMES = sorted(VARIANTS)


def make_variant(name: str, seed: int = 0):
    """A randomly initialised variant in eval mode with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    v = build_variant(recipe_config(name)).eval()
    with torch.no_grad():
        for m in v.G.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.3, 3.0)
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)
    return v


def one_per_generator() -> list[str]:
    """One variant per distinct generator (class, inputs, range): the fp16 cases."""
    seen = {}
    with torch.random.fork_rng():
        for name in NAMES:
            v = build_variant(recipe_config(name))
            key = (type(v.G).__name__, tuple(v.latent.input_names), v.output_range)
            seen.setdefault(key, name)
    return sorted(seen.values())


def eager(variant, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return variant.G(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``get(name, fp16=False) -> (variant, path, report)``, each exported once."""
    root, cache = tmp_path_factory.mktemp("onnx"), {}

    def get(name: str, fp16: bool = False):
        if (name, fp16) not in cache:
            v = make_variant(name)
            path = root / f"{name}{'-fp16' if fp16 else ''}.onnx"
            report = export_generator(v, path, fp16=fp16, meta={"step": 123, "ema": True})
            cache[name, fp16] = (v, path, report)
        return cache[name, fp16]

    return get


# ---------------------------------------------------------------------------------------------
# every variant: parity, dynamic batch, graph, metadata
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_export_matches_eager_at_any_batch(exported, name):
    variant, path, report = exported(name)
    assert report["exporter"] == "dynamo" and report["path"] == str(path)
    assert set(report["max_abs_err"]) == {1, 7, 64}
    assert all(e <= FP32_TOLERANCE for e in report["max_abs_err"].values()), report
    assert report["size_bytes"] == path.stat().st_size > 10_000 and report["seconds"] > 0
    gen = OnnxGenerator(path, providers=[CPU], threads=2)
    for n, seed in ((1, 10), (7, 11), (256, 12)):  # the batch axis is dynamic
        feeds = gen.latent(n, seed=seed)
        got = gen.run(**feeds)
        err = np.abs(got - eager(variant, feeds)).max()
        assert got.shape == (n, 1, 28, 28) and err <= FP32_TOLERANCE, (name, n, err)


@pytest.mark.parametrize("name", NAMES)
def test_graph_has_named_dynamic_io_and_no_batchnorm(exported, name):
    variant, path, report = exported(name)
    model = onnx.load(path)
    ops = [n.op_type for n in model.graph.node]
    assert "BatchNormalization" not in ops and report["batchnorm_nodes"] == 0
    assert [i.name for i in model.graph.input] == variant.latent.input_names
    assert [o.name for o in model.graph.output] == ["image"]
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and not dims[0].dim_value, (value.name, dims)
    elem = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert elem.pop("label", onnx.TensorProto.INT64) == onnx.TensorProto.INT64
    assert set(elem.values()) == {onnx.TensorProto.FLOAT}
    if any(isinstance(m, nn.ConvTranspose2d) for m in variant.G.modules()):
        assert ops.count("Gemm") >= 1  # the 1x1-input ConvTranspose became a Gemm


@pytest.mark.parametrize("name", NAMES)
def test_metadata_round_trip(exported, name):
    variant, path, _ = exported(name)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["variant"] == name and props["output_range"] == variant.output_range
    assert props["input_names"] == ",".join(variant.latent.input_names)
    assert props["version.torch"] == torch.__version__
    assert props["version.onnx"] == onnx.__version__ and "version.gan_accel" in props
    meta = OnnxGenerator(path, providers=[CPU]).meta
    latent = variant.latent.to_meta()
    assert {k: getattr(meta, k) for k in latent} == latent
    assert (meta.step, meta.ema, meta.dtype, meta.io_dtype, meta.opset) == (
        123, True, "float32", "float32", 18)


@pytest.mark.parametrize("name", one_per_generator())
def test_fp16_export_within_tolerance(exported, name):
    variant, path, report = exported(name, fp16=True)
    fp32_path = exported(name)[1]
    tol = FP16_TOLERANCE[variant.output_range]
    assert report["dtype"] == "float16" and report["tolerance"] == tol
    model = onnx.load(path)
    sizes = {onnx.TensorProto.FLOAT: 0, onnx.TensorProto.FLOAT16: 0}
    for t in model.graph.initializer:
        if t.data_type in sizes:
            sizes[t.data_type] += int(np.prod(t.dims))
    assert sizes[onnx.TensorProto.FLOAT] <= 8  # weights in half; float32 only for e.g. scales
    assert sizes[onnx.TensorProto.FLOAT16] > 1000
    assert path.stat().st_size < 0.6 * fp32_path.stat().st_size
    gen = OnnxGenerator(path, providers=[CPU])
    assert gen.meta.dtype == "float16"
    feeds = gen.latent(256, seed=4)
    ref = eager(variant, feeds)
    got = gen.run(**feeds)
    assert got.dtype == np.float32  # float32 I/O around a float16 graph
    err = np.abs(got - ref).max()
    with torch.no_grad():  # eager torch's own float16 error against float32
        G16 = prepare_generator(variant.G, {k: torch.from_numpy(v) for k, v in feeds.items()})
        half = G16.half()(**{k: torch.from_numpy(v).half() if v.dtype == np.float32
                             else torch.from_numpy(v) for k, v in feeds.items()})
    torch_err = np.abs(half.float().numpy() - ref).max()
    assert 0 < err <= tol, (name, err)
    assert err <= max(2 * torch_err, 1e-4), (name, err, torch_err)


# ---------------------------------------------------------------------------------------------
# graph preparation
# ---------------------------------------------------------------------------------------------
def test_prepare_folds_batchnorm_and_rewrites_first_conv_transpose():
    v = make_variant("dcgan")
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    model = prepare_generator(v.G, {"z": z[:2]})
    assert not any(isinstance(m, _BatchNorm | ChannelAffine) for m in model.modules())
    assert isinstance(model.net[0], ConvTransposeAsLinear)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.modules()) == 3
    assert any(isinstance(m, _BatchNorm) for m in v.G.modules())  # the original is untouched
    with torch.no_grad():
        torch.testing.assert_close(model(z=z), v.G(z=z), atol=2e-6, rtol=0)


class LoneBatchNormG(nn.Module):
    """A bare G whose BatchNorm follows nothing foldable, with a padded ConvTranspose."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4 * 7 * 7)
        self.bn = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 1, 4, 4, 0)  # 7 -> 28

    def forward(self, z):
        return torch.tanh(self.up(self.bn(self.fc(z).view(-1, 4, 7, 7))))


def test_bare_generator_with_a_lone_batchnorm(tmp_path):
    torch.manual_seed(1)
    G = LoneBatchNormG().eval()
    with torch.no_grad():
        G.bn.running_mean.normal_(0, 0.5)
        G.bn.running_var.uniform_(0.5, 2)
    meta = {"latent": {"z_dim": 8, "z_dist": "uniform"}, "variant": "toy",
            "output_range": "symmetric"}
    report = export_generator(G, tmp_path / "toy.onnx", meta=meta)
    assert report["batchnorm_nodes"] == 0 and max(report["max_abs_err"].values()) <= 1e-5
    assert "BatchNormalization" not in [n.op_type for n in onnx.load(tmp_path / "toy.onnx")
                                        .graph.node]
    gen = OnnxGenerator(tmp_path / "toy.onnx", providers=[CPU])
    assert (gen.meta.variant, gen.meta.z_dist, gen.meta.step) == ("toy", "uniform", None)
    with pytest.raises(TypeError, match="needs meta"):
        export_generator(G, tmp_path / "bad.onnx")
    with pytest.raises(TypeError, match="unknown meta keys"):
        export_generator(make_variant("gan"), tmp_path / "bad.onnx", meta={"stpe": 1})


@pytest.mark.parametrize("opset", [17, 0, 99, "18"])
def test_bad_opset_is_refused(tmp_path, opset):
    with pytest.raises(UserError, match="opset .* is not supported; choose 18.."):
        export_generator(make_variant("gan"), tmp_path / "g.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_other_opset_exports(tmp_path):
    report = export_generator(make_variant("gan"), tmp_path / "g.onnx", opset=20)
    assert report["opset"] == 20 and max(report["max_abs_err"].values()) <= FP32_TOLERANCE
    model = onnx.load(tmp_path / "g.onnx")
    assert [o.version for o in model.opset_import if o.domain == ""] == [20]


def test_torchscript_fallback_is_announced(tmp_path, monkeypatch, capsys):
    real_export = torch.onnx.export

    def no_dynamo(*args, **kwargs):
        if kwargs.get("dynamo"):
            raise RuntimeError("simulated dynamo failure")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    v = make_variant("infogan")
    report = export_generator(v, tmp_path / "ts.onnx")
    assert "(simulated dynamo failure); using the TorchScript exporter" in capsys.readouterr().err
    assert report["exporter"] == "torchscript" and report["batchnorm_nodes"] == 0
    assert max(report["max_abs_err"].values()) <= FP32_TOLERANCE
    gen = OnnxGenerator(tmp_path / "ts.onnx", providers=[CPU])
    assert gen.meta.exporter == "torchscript" and gen.input_names == ["z", "codes"]
    feeds = gen.latent(256, seed=0)
    assert np.abs(gen.run(**feeds) - eager(v, feeds)).max() <= FP32_TOLERANCE


# ---------------------------------------------------------------------------------------------
# the CLIs on a tiny trained run
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-step DCGAN run with an EMA generator; also a cgan export for --label."""
    root = tmp_path_factory.mktemp("export-cli")
    tiny_mnist(root / "data", n=40, seed=5)
    cfg = recipe_config("dcgan", dataset="mnist", data_dir=str(root / "data"),
                             batch_size=8, max_steps=2, out=str(root / "run"), progress=False,
                             ema=0.9, seed=3)
    Trainer(cfg, log=lambda *_: None).fit()
    export_generator(make_variant("cgan"), root / "cgan.onnx", validate=False)
    return root


def one_line_error(capsys, main, argv, match):
    code = run_cli(main, [str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert match.lower() in err.lower(), (match, err)
    return err


@pytest.mark.slow  # every export format through the CLI: 11 s with empty caches
def test_cli_exports_a_checkpoint_end_to_end(tiny_run, tmp_path):
    out = tmp_path / "g.onnx"
    proc = run_module("gan_accel.export", "--checkpoint", str(tiny_run / "run"), "--out",
                      str(out), "--no-ema", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "validated batch  64" in proc.stdout, proc.stdout
    from gan_accel.checkpoints import load_trained

    variant, meta = load_trained(tiny_run / "run", ema=False)
    gen = OnnxGenerator(out, providers=[CPU])
    assert (gen.meta.variant, gen.meta.step, gen.meta.ema) == ("dcgan", 2, False)
    assert gen.meta.source.endswith("ckpt-00000002.json")
    feeds = gen.latent(33, seed=0)
    assert np.abs(gen.run(**feeds) - eager(variant, feeds)).max() <= FP32_TOLERANCE


def test_cli_exports_the_ema_generator_by_default(tiny_run, tmp_path, capsys):
    out = tmp_path / "default.onnx"
    assert run_cli(export_cli.main, ["--checkpoint", str(tiny_run / "run"), "--out",
                                     str(out)]) == 0
    from gan_accel.checkpoints import load_trained

    ema, meta = load_trained(tiny_run / "run")
    raw, _ = load_trained(tiny_run / "run", ema=False)
    gen = OnnxGenerator(out, providers=[CPU])
    assert meta["ema"] and gen.meta.ema
    feeds = gen.latent(16, seed=2)
    assert np.abs(gen.run(**feeds) - eager(ema, feeds)).max() <= FP32_TOLERANCE
    assert np.abs(gen.run(**feeds) - eager(raw, feeds)).max() > 1e-3  # not the raw G


def test_cli_exports_the_ema_generator(tiny_run, tmp_path, capsys):
    out = tmp_path / "ema.onnx"
    assert run_cli(export_cli.main, ["--checkpoint", str(tiny_run / "run"), "--out", str(out),
                                     "--ema", "--fp16"]) == 0
    assert "wrote" in capsys.readouterr().out
    from gan_accel.checkpoints import load_trained

    variant, _ = load_trained(tiny_run / "run", ema=True)
    gen = OnnxGenerator(out, providers=[CPU])
    assert gen.meta.ema and gen.meta.dtype == "float16"
    feeds = gen.latent(16, seed=1)
    assert np.abs(gen.run(**feeds) - eager(variant, feeds)).max() <= FP16_TOLERANCE["unit"]


def discriminator_only(run, dest):
    json_path = resolve_checkpoint(run)
    meta, tensors = load_checkpoint(json_path)
    keep = {k: v for k, v in tensors.items() if not k.startswith(("model.G.", "ema."))}
    meta = {k: v for k, v in meta.items() if k not in ("format", "tensors", "sha256")}
    return save_checkpoint(dest, "ckpt-00000002", keep, meta)


CLI_CASES = [
    (["--checkpoint", "/nonexistent/run", "--out", "{tmp}/g.onnx"], "does not exist"),
    (["--checkpoint", "{corrupt}", "--out", "{tmp}/g.onnx"], "corrupt"),
    (["--checkpoint", "{d_only}", "--out", "{tmp}/g.onnx"], "no generator weights"),
    (["--checkpoint", "{tmp}/notes.json", "--out", "{tmp}/g.onnx"], "not a gan-accel checkpoint"),
    (["--checkpoint", "{run}", "--out", "{tmp}/g.onnx", "--best"], "no best checkpoint"),
    (["--checkpoint", "{run}", "--out", "{tmp}/no/such/dir/g.onnx"], "does not exist"),
    (["--checkpoint", "{run}", "--out", "{tmp}"], "must end in .onnx"),
    (["--checkpoint", "{run}", "--out", "{tmp}/folder.onnx"], "is a folder"),
    (["--checkpoint", "{run}", "--out", "/proc/g.onnx"], "cannot write"),
    (["--checkpoint", "{run}", "--out", "{tmp}/g.onnx", "--opset", "7"], "opset 7 is not"),
    (["--checkpoint", "{run}", "--out", "{tmp}/g.onnx", "--opset", "999"], "opset 999 is not"),
    (["--checkpoint", "{run}", "--out", "{tmp}/g.onnx", "--opset", "x"], "invalid int value"),
    (["--out", "{tmp}/g.onnx"], "one of the arguments --checkpoint --onnx is required"),
]


@pytest.mark.parametrize("argv, match", CLI_CASES, ids=[m for _, m in CLI_CASES])
def test_cli_refuses_bad_input_in_one_line(capsys, tmp_path, tiny_run, argv, match):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_run / "run", corrupt)
    st = sorted((corrupt / "checkpoints").glob("*.safetensors"))[-1]
    st.write_bytes(st.read_bytes()[:200])
    d_only = discriminator_only(tiny_run / "run", tmp_path / "d_only")
    (tmp_path / "notes.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / "folder.onnx").mkdir()
    argv = [a.format(run=tiny_run / "run", tmp=tmp_path, corrupt=corrupt, d_only=d_only)
            for a in argv]
    one_line_error(capsys, export_cli.main, argv, match)
    assert not [p for p in tmp_path.glob("*.onnx") if p.is_file()]
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_error_exit_code_in_a_subprocess(tmp_path):
    proc = run_module("gan_accel.export", "--checkpoint", str(tmp_path / "none"), "--out",
                      str(tmp_path / "g.onnx"), timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def test_failed_validation_writes_nothing(capsys, tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "g.onnx"
    out.write_bytes(b"previous model")
    monkeypatch.setattr(onnx_export, "FP32_TOLERANCE", -1.0)  # every error is now too big
    err = one_line_error(capsys, export_cli.main, ["--checkpoint", tiny_run / "run", "--out",
                                                   out], "differs from eager pytorch")
    assert "batch 1" in err and "nothing was written" in err
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]  # no temp file left
    monkeypatch.undo()
    with pytest.raises(ExportError):
        export_generator(make_variant("gan"), tmp_path / "h.onnx", tolerance=-1.0)
    assert not (tmp_path / "h.onnx").exists()


# ---------------------------------------------------------------------------------------------
# python -m gan_accel.sample --onnx
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # an ONNX export and two sampling commands: 8 s with empty caches
def test_sample_cli_onnx_grid_matches_checkpoint_grid(tiny_run, tmp_path):
    from gan_accel.checkpoints import load_trained

    onnx_path = tmp_path / "g.onnx"
    export_generator(load_trained(tiny_run / "run")[0], onnx_path, validate=False)
    proc = run_module("gan_accel.sample", "--onnx", str(onnx_path), "--n", "16", "--seed", "4",
                      "--out", str(tmp_path / "onnx.png"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert run_cli(sample.main, ["--checkpoint", str(tiny_run / "run"), "--n", "16", "--seed",
                                 "4", "--out", str(tmp_path / "ckpt.png")]) == 0
    a = np.asarray(Image.open(tmp_path / "onnx.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "ckpt.png"), dtype=np.int16)
    assert a.shape == b.shape and a.shape[0] > 100
    assert np.abs(a - b).max() <= 1  # same latent, same weights: at most a rounding step
    assert a.std() > 1  # not a blank image


def test_sample_cli_onnx_label(tiny_run, tmp_path, capsys):
    cgan = tiny_run / "cgan.onnx"
    out = tmp_path / "three.png"
    assert run_cli(sample.main, ["--onnx", str(cgan), "--label", "3", "--n", "4",
                                 "--out", str(out)]) == 0
    assert out.stat().st_size > 200
    capsys.readouterr()


SAMPLE_CASES = [
    (["--onnx", "{cgan}", "--label", "10"], "--label 10 is out of range 0..9"),
    (["--onnx", "{dcgan}", "--label", "1"], "needs a conditional model"),
    (["--onnx", "{tmp}/missing.onnx"], "does not exist"),
    (["--onnx", "{tmp}/junk.onnx"], "is not a valid onnx model"),
    (["--onnx", "{cgan}", "--ema"], "--ema applies to --checkpoint"),
    (["--onnx", "{cgan}", "--device", "cuda"], "install onnxruntime-gpu"),
]


@pytest.mark.parametrize("argv, match", SAMPLE_CASES, ids=[m for _, m in SAMPLE_CASES])
def test_sample_cli_onnx_bad_input(capsys, tmp_path, tiny_run, argv, match):
    import onnxruntime as ort

    if "cuda" in argv and "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    dcgan = tmp_path / "dcgan.onnx"
    if "{dcgan}" in argv:
        export_generator(make_variant("dcgan"), dcgan, validate=False)
    (tmp_path / "junk.onnx").write_bytes(b"junk" * 50)
    argv = [a.format(cgan=tiny_run / "cgan.onnx", dcgan=dcgan, tmp=tmp_path) for a in argv]
    one_line_error(capsys, sample.main, [*argv, "--out", tmp_path / "g.png"], match)
    assert not (tmp_path / "g.png").exists()
