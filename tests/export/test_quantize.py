"""INT8 export: the conv form is exact, the quantised model keeps quality or is refused.

The gate is exercised on a DCGAN trained for 2 epochs of the embedded subset (~11 s on one
core): a random-weight generator makes near-constant images that the evaluation classifier
puts in one class, so any calibration would "agree". A calibration on latents shrunk 20x
(activation ranges far too narrow) must be refused, leaving nothing behind.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnx
import pytest
import torch
from gan_accel.export import quantize
from gan_accel.export.conv_form import SubPixelConvTranspose, to_conv_form
from gan_accel.export.onnx_export import export_generator, prepare_generator
from gan_accel.export.quantize import (
    Calibration,
    Gate,
    LatentCalibrationReader,
    QualityGateError,
    quantize_generator,
)
from gan_accel.export.runtime import CPU, OnnxGenerator
from torch import nn

from gan_accel.checkpoints import load_trained
from gan_accel.cli import export as export_cli
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config

GATE = Gate(samples=1000)


# ---------------------------------------------------------------------------------------------
# conv form: ConvTranspose2d == Conv2d + pixel shuffle, exactly
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cin, cout, k, s, p, hw", [
    (128, 64, 4, 2, 1, (4, 4)),  # DCGAN layer 2
    (64, 32, 2, 2, 1, (8, 8)),  # DCGAN layer 3 (crop of one row each side)
    (32, 1, 2, 2, 0, (14, 14)),  # DCGAN output layer
    (5, 3, 3, 2, 1, (5, 7)),  # kernel not a multiple of the stride: zero taps
    (4, 6, (4, 3), (2, 3), (1, 0), (3, 6)),  # per-axis kernel, stride, padding
    (3, 2, 5, 1, 2, (6, 6)),  # stride 1: a plain (flipped) convolution
])
def test_sub_pixel_conv_matches_conv_transpose(cin, cout, k, s, p, hw):
    torch.manual_seed(0)
    ct = nn.ConvTranspose2d(cin, cout, k, s, p, bias=True).double()
    x = torch.randn(3, cin, *hw, dtype=torch.float64)
    sub = SubPixelConvTranspose(ct.float()).double()
    with torch.no_grad():
        want, got = ct.double()(x), sub(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_to_conv_form_moves_activations_and_keeps_the_generator():
    torch.manual_seed(1)
    v = load_or_build("dcgan")
    z = torch.randn(9, 16)
    model = prepare_generator(v.G, {"z": z[:2]})
    with torch.no_grad():
        before = model(z=z)
        assert to_conv_form(model) == 3
        after = model(z=z)
    subs = [m for m in model.modules() if isinstance(m, SubPixelConvTranspose)]
    assert len(subs) == 3 and not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert [type(m.activation).__name__ for m in subs] == ["ReLU", "ReLU", "Sigmoid"]
    assert type(model.net[0].activation).__name__ == "ReLU"  # the Gemm's ReLU moved in too
    assert not any(isinstance(m, nn.ReLU | nn.Sigmoid) for m in model.net)
    torch.testing.assert_close(after, before, atol=2e-6, rtol=0)


def load_or_build(name: str):
    from gan_accel.variants import build_variant

    return build_variant(recipe_config(name)).eval()


# ---------------------------------------------------------------------------------------------
# the int8 export and its gate, on a briefly trained DCGAN
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run dir, variant): DCGAN, 2 epochs of the embedded subset at lr 1e-3, seed 0: blurry
    digits of every class (1 epoch: mostly one class, which would make the gate trivial)."""
    root = tmp_path_factory.mktemp("int8")
    cfg = recipe_config("dcgan", epochs=2, lr_d=1e-3, lr_g=1e-3, out=str(root / "run"),
                             progress=False, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads on 2 shared cores ran this 10x slower
    try:
        Trainer(cfg, log=lambda *_: None).fit()
    finally:
        torch.set_num_threads(threads)
    variant, _ = load_trained(root / "run")
    return root / "run", variant


@pytest.fixture(scope="module")
def int8(trained, tmp_path_factory):
    """(path, stdout) of ``python -m gan_accel.export --format int8`` on the trained run."""
    path = tmp_path_factory.mktemp("int8-model") / "g-int8.onnx"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_cli(export_cli.main, ["--checkpoint", str(trained[0]), "--out", str(path),
                                         "--format", "int8", "--gate-samples", "1000"])
    assert code == 0, out.getvalue()
    return path, out.getvalue()


@pytest.mark.slow
def test_int8_export_passes_its_gate_and_serves(trained, int8):
    path, text = int8
    assert "quality gate passed on 1000 samples" in text and f"wrote {path}" in text
    gen = OnnxGenerator(path, providers=[CPU], threads=1)
    assert gen.meta.dtype == "int8" and gen.meta.step == 156 and gen.meta.variant == "dcgan"
    q = gen.meta.quantization
    assert q["format"] == "QDQ" and q["weights"] == "int8 per channel (symmetric)"
    assert "16 x 128 latent draws" in q["calibration"] and "on 1000 samples" in q["gate"]
    agreement = float(q["gate"].split()[1])
    assert agreement >= 0.98, q["gate"]
    assert path.stat().st_size < 0.6 * (172_608 * 4)  # int8 weights (fp32: 690 KB)
    feeds = gen.latent(64, seed=3)
    with torch.no_grad():
        want = trained[1].G(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    err = np.abs(gen.run(**feeds) - want)
    assert 0 < err.mean() < 0.01 and err.max() < 0.5  # int8: close, not identical


@pytest.mark.slow
def test_int8_graph_runs_int8_kernels_and_names_its_float_ops(int8, tmp_path):
    path, text = int8
    floats, ints = quantize.float_operators(quantize.runtime_graph(path, tmp_path))
    assert ints["QLinearConv"] == 3 and ints["QLinearSigmoid"] == 1  # every ConvTranspose
    assert [n.op_type for n in floats] == ["Gemm"]  # only the layer reading the latent
    assert "float: Gemm x1: reads the latent input" in text
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert "ConvTranspose" not in ops and ops.count("QuantizeLinear") >= 4
    q = OnnxGenerator(path, providers=[CPU]).meta.quantization
    assert q["float_ops"] == "Gemmx1" and q["int8_ops"] == "QLinearConvx3,QLinearSigmoidx1"


class ShrunkLatents(LatentCalibrationReader):
    """A deliberately broken calibration: latents 20x smaller than the model ever sees."""

    def rewind(self) -> None:
        super().rewind()
        self._batches = iter([{k: v * 0.05 for k, v in b.items()} for b in self._batches])


@pytest.mark.slow
def test_broken_calibration_is_refused_and_writes_nothing(trained, tmp_path):
    out = tmp_path / "broken.onnx"
    out.write_bytes(b"previous model")
    with pytest.raises(QualityGateError, match="int8 quality gate refused the dcgan generator") \
            as exc:
        quantize_generator(trained[1], out, gate=GATE, reader=ShrunkLatents(trained[1].latent))
    message = str(exc.value)
    assert "agrees with fp32 on" in message and "nothing was written" in message
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]  # no temp left


@pytest.mark.parametrize("argv, match", [
    (["--format", "int8", "--fp16"], "--fp16 applies to --format onnx"),
    (["--format", "int8", "--gate-samples", "3000"], "--gate-samples 3000 is out of range"),
    (["--format", "int8", "--calibration-batches", "0"], "--calibration-batches must be >= 1"),
    (["--format", "pt2"], "must end in .pt2"),
])
@pytest.mark.slow
def test_cli_int8_bad_flags(trained, tmp_path, capsys, argv, match):
    out = tmp_path / "g.onnx"
    code = run_cli(export_cli.main, ["--checkpoint", str(trained[0]), "--out", str(out), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and match in err, err
    assert not out.exists()


def test_float_operator_report_on_a_graph_with_conv_transpose(tmp_path):
    """Without the conv form, onnxruntime keeps ConvTranspose in float: the report says so."""
    v = load_or_build("dcgan")
    fp32 = tmp_path / "g.onnx"
    export_generator(v, fp32, validate=False)
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with quantize._no_root_warnings():
        quantize_static(str(fp32), str(tmp_path / "q.onnx"), LatentCalibrationReader(
            v.latent, Calibration(batches=2, batch_size=8)), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    floats, ints = quantize.float_operators(quantize.runtime_graph(tmp_path / "q.onnx",
                                                                   tmp_path))
    described = quantize.describe_float_ops(floats, [])
    assert [(d["op"], d["count"]) for d in described] == [("ConvTranspose", 3)]
    assert "no int8 ConvTranspose kernel" in described[0]["reason"]
    assert ints.get("QGemm") == 1
