"""export.runtime.OnnxGenerator: sampling, parity with eager, bad inputs, torch-free serving."""

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from gan_accel.export.onnx_export import export_generator
from gan_accel.export.runtime import CPU, CUDA, ModelFileError, OnnxGenerator
from helpers import REPO

from gan_accel.variants import build_variant, recipe_config

NAMES = ("dcgan", "cgan", "infogan", "began")  # unconditional, label, codes, uniform z


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (variant, path to its export)."""
    root = tmp_path_factory.mktemp("runtime")
    out = {}
    for i, name in enumerate(NAMES):
        torch.manual_seed(i)
        v = build_variant(recipe_config(name)).eval()
        export_generator(v, root / f"{name}.onnx", meta={"step": 7}, validate=False)
        out[name] = (v, root / f"{name}.onnx")
    return out


def gen_for(models, name, **kw) -> OnnxGenerator:
    return OnnxGenerator(models[name][1], providers=[CPU], threads=2, **kw)


def eager(variant, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return variant.G(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_sample_matches_eager_at_odd_and_large_batches(models, name):
    variant, _ = models[name]
    gen = gen_for(models, name)
    assert gen.providers == [CPU] and gen.meta.variant == name and gen.meta.step == 7
    lo, hi = (0.0, 1.0) if gen.output_range == "unit" else (-1.0, 1.0)
    for n, seed in ((1, 0), (7, 1), (256, 2)):
        feeds = gen.latent(n, seed=seed)
        images = gen.sample(n, seed=seed)
        assert images.shape == (n, 1, 28, 28) and images.dtype == np.float32
        assert lo <= images.min() and images.max() <= hi
        err = np.abs(images - eager(variant, feeds)).max()
        assert err <= 1e-5, f"{name} batch {n}: max |ort - eager| = {err:.3g}"


def test_sampling_is_seeded(models):
    gen = gen_for(models, "dcgan")
    a, b, c = gen.sample(4, seed=3), gen.sample(4, seed=3), gen.sample(4, seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_latent_follows_the_metadata_distributions(models):
    z = gen_for(models, "dcgan").latent(4000, seed=0)["z"]  # N(0, 1)^16
    assert z.shape == (4000, 16) and z.dtype == np.float32
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    info = gen_for(models, "infogan").latent(4000, seed=0)  # U(-1, 1)^10, one-hot 10 ++ U^2
    assert info["z"].min() >= -1 and info["z"].max() <= 1 and abs(info["z"].std() - 0.577) < 0.01
    cat, cont = info["codes"][:, :10], info["codes"][:, 10:]
    np.testing.assert_array_equal(cat.sum(1), 1.0)
    assert set(np.unique(cat)) == {0.0, 1.0} and len(np.unique(cat.argmax(1))) == 10
    assert cont.min() >= -1 and cont.max() <= 1 and abs(cont.std() - 0.577) < 0.02
    label = gen_for(models, "cgan").latent(500, seed=0)["label"]
    assert label.dtype == np.int64 and set(np.unique(label)) == set(range(10))


def test_label_fixes_the_class_or_categorical_code(models):
    cgan = gen_for(models, "cgan")
    feeds = cgan.latent(5, seed=1, label=3)
    np.testing.assert_array_equal(feeds["label"], 3)
    np.testing.assert_array_equal(cgan.sample(5, seed=1, label=3), cgan.run(**feeds))
    assert np.abs(cgan.sample(5, seed=1, label=3) - cgan.sample(5, seed=1, label=4)).max() > 1e-4
    info = gen_for(models, "infogan")
    codes = info.latent(6, seed=0, label=np.arange(6))["codes"]
    np.testing.assert_array_equal(codes[:, :10].argmax(1), np.arange(6))
    mine = np.zeros((2, 12), np.float32)
    mine[:, 4] = 1
    np.testing.assert_array_equal(info.latent(2, seed=0, codes=mine)["codes"], mine)


Z = np.zeros((2, 16), np.float32)
BAD_INPUTS = [
    ("dcgan", lambda g: g.run(Z.astype(np.float64)), "must be float32"),
    ("dcgan", lambda g: g.run(Z.astype(np.int64)), "must be float32"),
    ("dcgan", lambda g: g.run(torch.zeros(2, 16)), "must be a numpy array"),
    ("dcgan", lambda g: g.run(np.zeros((2, 15), np.float32)), "shape [B, 16]"),
    ("dcgan", lambda g: g.run(np.zeros(16, np.float32)), "shape [B, 16]"),
    ("dcgan", lambda g: g.run(np.zeros((0, 16), np.float32)), "empty"),
    ("dcgan", lambda g: g.run(np.full((2, 16), np.nan, np.float32)), "NaN"),
    ("dcgan", lambda g: g.run(Z, label=np.zeros(2, np.int64)), "takes no label"),
    ("dcgan", lambda g: g.sample(2, label=1), "unconditional"),
    ("dcgan", lambda g: g.sample(0), "positive int"),
    ("dcgan", lambda g: g.sample(-3), "positive int"),
    ("dcgan", lambda g: g.sample(2.5), "positive int"),
    ("cgan", lambda g: g.run(np.zeros((2, 64), np.float32)), "label is required"),
    ("cgan", lambda g: g.run(np.zeros((2, 64), np.float32), label=np.array([0, 10])),
     "label 10 is out of range 0..9"),
    ("cgan", lambda g: g.run(np.zeros((2, 64), np.float32), label=np.array([-1, 0])),
     "out of range"),
    ("cgan", lambda g: g.run(np.zeros((2, 64), np.float32), label=np.array([0.0, 1.0])),
     "must hold integers"),
    ("cgan", lambda g: g.run(np.zeros((2, 64), np.float32), label=np.array([0, 1, 2])),
     "shape [2]"),
    ("cgan", lambda g: g.sample(3, label=12), "out of range"),
    ("infogan", lambda g: g.run(np.zeros((2, 10), np.float32)), "codes is required"),
    ("infogan", lambda g: g.run(np.zeros((2, 10), np.float32), codes=np.zeros((2, 11),
                                                                             np.float32)),
     "codes must have shape [2, 12]"),
    ("infogan", lambda g: g.run(np.zeros((2, 10), np.float32), codes=np.zeros((3, 12),
                                                                             np.float32)),
     "shape [2, 12]"),
    ("infogan", lambda g: g.run(np.zeros((2, 10), np.float32), codes=np.zeros((2, 12))),
     "codes must be float32"),
    ("infogan", lambda g: g.sample(2, label=10), "out of range 0..9"),
    ("infogan", lambda g: g.sample(2, label=1, codes=np.zeros((2, 12), np.float32)),
     "not both"),
]


@pytest.mark.parametrize("name, call, match", BAD_INPUTS,
                         ids=[f"{n}-{m}" for n, _, m in BAD_INPUTS])
def test_bad_inputs_raise_clear_value_errors(models, name, call, match):
    with pytest.raises(ValueError, match=match.replace("[", r"\[").replace("]", r"\]")):
        call(gen_for(models, name))


def test_bad_files_name_the_file(tmp_path, models):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelFileError, match="missing.onnx does not exist"):
        OnnxGenerator(missing)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf at all" * 10)
    with pytest.raises(ModelFileError, match="garbage.onnx is not a valid ONNX model"):
        OnnxGenerator(garbage)
    plain = tmp_path / "plain.onnx"  # valid ONNX, not a gan-accel export
    x = onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["b", 16])
    y = onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["b", 16])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["z"], ["image"])],
                                   "plain", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]),
              plain)
    with pytest.raises(ModelFileError, match="plain.onnx has no gan-accel metadata"):
        OnnxGenerator(plain)
    assert issubclass(ModelFileError, ValueError)


def test_session_options_and_batch_slicing(models):
    path = models["dcgan"][1]
    intra = OnnxGenerator(path, providers=[CPU], threads=2, parallel="intra", spin=False)
    assert intra.options.intra_op_num_threads == 2
    assert intra.options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert intra.options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    with OnnxGenerator(path, providers=[CPU], threads=3) as sliced:  # default: "batch"
        assert sliced.options.intra_op_num_threads == 1 and sliced.parallel == "batch"
        assert "threads=3 (batch)" in repr(sliced) and "dcgan" in repr(sliced)
        for n in (1, 23, 100):  # no slicing, 2 slices of 11/12, 3 uneven slices
            z = intra.latent(n, seed=n)["z"]
            np.testing.assert_allclose(sliced.run(z), intra.run(z), atol=1e-6, rtol=0)
        assert sliced._pool is not None
    assert sliced._pool is None  # closed by the context manager
    with pytest.raises(ValueError, match="parallel must be"):
        OnnxGenerator(path, parallel="both")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        OnnxGenerator(path, threads=0)


TORCH_FREE = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
from gan_accel import export
gen = export.OnnxGenerator(sys.argv[1])
assert gen.providers == ["CPUExecutionProvider"], gen.providers
np.save(sys.argv[2], gen.sample(6, seed=11, label=2))
try:
    export.export_generator
except ImportError:
    print("exporter needs torch: ok")
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "torch" and sys.modules[m])
ours = sorted(m for m in sys.modules if m.startswith("gan_accel"))
print("torch-free:", not loaded, loaded)
print("gan_accel modules:", ours)
"""


def test_runtime_serves_without_torch(models, tmp_path):
    variant, path = models["cgan"]
    out = tmp_path / "images.npy"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(TORCH_FREE), str(path),
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch-free: True" in proc.stdout and "exporter needs torch: ok" in proc.stdout
    # the runtime shares the torch-free latent layout, ranges and file writes (gan_accel.atomic
    # and its error type), nothing else of the library
    assert ("gan_accel modules: ['gan_accel', 'gan_accel.atomic', 'gan_accel.errors', "
            "'gan_accel.export', 'gan_accel.export.metadata', 'gan_accel.export.runtime', "
            "'gan_accel.latent', 'gan_accel.ranges']") in proc.stdout
    images = np.load(out)
    feeds = gen_for(models, "cgan").latent(6, seed=11, label=2)
    assert np.abs(images - eager(variant, feeds)).max() <= 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(CUDA not in ort.get_available_providers() or not torch.cuda.is_available(),
                    reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_provider_with_io_binding(models):
    gen = OnnxGenerator(models["dcgan"][1])  # default: CUDA first
    assert gen.on_cuda and gen.providers[0] == CUDA
    cpu = gen_for(models, "dcgan")
    np.testing.assert_allclose(gen.sample(64, seed=0), cpu.sample(64, seed=0), atol=1e-4)
