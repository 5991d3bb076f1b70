"""The sample applications: class grid, interpolation, arithmetic, InfoGAN code sweep.

Layout and latent semantics are checked on a recording generator (no training); the CLI is
checked on tiny 2-step runs: each application writes a PNG of the expected size, and bad
input exits 2 with one line.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_mnist
from PIL import Image

from gan_accel.cli import sample
from gan_accel.errors import UserError, run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import build_variant, recipe_config

TILE = 28 * 2 + 2  # save_grid: 2x upscaling, 2-pixel padding


def grid_shape(rows: int, cols: int) -> tuple[int, int]:
    return rows * TILE + 2, cols * TILE + 2


class Recorder(torch.nn.Module):
    """A stand-in G that records its latent inputs and returns blank images."""

    def __init__(self):
        super().__init__()
        self.calls: list[dict[str, torch.Tensor]] = []

    def forward(self, **latent):
        self.calls.append({k: v.clone() for k, v in latent.items()})
        return torch.zeros(latent["z"].shape[0], 1, 28, 28)


def recording(model: str):
    torch.manual_seed(0)
    variant = build_variant(recipe_config(model))
    variant.G = Recorder()
    return variant


def args_for(**kw):
    base = dict(n=64, seed=3, label=None, device="cpu", pairs=None, path="slerp",
                interpolate=None, arithmetic=None, sweep=None, class_grid=False)
    return SimpleNamespace(**{**base, **kw})


# --------------------------------------------------------------------------- semantics


@pytest.mark.parametrize("model", ["cgan", "infogan"])
def test_class_grid_rows_are_classes_columns_share_latents(model):
    variant = recording(model)
    images, nrow, _ = sample.class_grid(variant, args_for())
    assert images.shape == (100, 1, 28, 28) and nrow == 10
    (lat,) = variant.G.calls
    rows = torch.arange(10).repeat_interleave(10)
    if model == "cgan":
        assert torch.equal(lat["label"], rows)
    else:
        assert torch.equal(lat["codes"][:, :10].argmax(1), rows)
    z = lat["z"].view(10, 10, -1)  # [row, col, z_dim]
    assert torch.equal(z[3], z[7])  # same column latents in every row
    assert not torch.equal(z[0, 0], z[0, 1])
    pool = sample.sample_pool(variant.latent, 64, 3, None)
    assert torch.equal(z[0], pool["z"][:10])  # column j = sample j of the plain grid


def test_interpolation_ends_are_the_chosen_samples():
    variant = recording("dcgan")
    images, nrow, _ = sample.interpolation(variant, args_for(interpolate=5, pairs="4:9,0:63"))
    assert images.shape[0] == 10 and nrow == 5
    z = variant.G.calls[0]["z"].view(2, 5, -1)
    pool = sample.sample_pool(variant.latent, 64, 3, None)["z"]
    torch.testing.assert_close(z[0, 0], pool[4])
    torch.testing.assert_close(z[0, -1], pool[9])
    torch.testing.assert_close(z[1, -1], pool[63])


def test_slerp_and_lerp():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    b = b / b.norm() * a.norm()  # equal norms: slerp keeps the norm all along the arc
    t = torch.linspace(0, 1, 7)
    path = sample.slerp(a, b, t)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(7), rtol=1e-5, atol=1e-5)
    line = sample.lerp(a, b, t)
    torch.testing.assert_close(line[3], (a + b) / 2)
    assert line[3].norm() < path[3].norm()  # the chord cuts inside the sphere
    torch.testing.assert_close(sample.slerp(a, a, t), a.expand(7, 16))  # degenerate: no NaN


def test_parse_arithmetic():
    assert sample.parse_arithmetic("1,2,3 - 4,5 + 6", 10) == [
        (1.0, [1, 2, 3]), (-1.0, [4, 5]), (1.0, [6])]
    assert sample.parse_arithmetic("-7+0", 8) == [(-1.0, [7]), (1.0, [0])]
    for bad in ("", "1,,2", "a=1,2", "1 * 2", "1,2-", "+-3"):
        with pytest.raises(UserError, match="not valid"):
            sample.parse_arithmetic(bad, 10)
    with pytest.raises(UserError, match="out of range 0..9"):
        sample.parse_arithmetic("1 - 10", 10)


def test_arithmetic_result_is_the_signed_sum_of_means():
    variant = recording("infogan")
    images, width, _ = sample.arithmetic(variant, args_for(arithmetic="1,2,3 - 4,5 + 6"))
    assert width == 5 and images.shape[0] == 4 * width  # 3 term rows + the result row
    pool = sample.sample_pool(variant.latent, 64, 3, None)
    final = variant.G.calls[-1]
    for key in ("z", "codes"):
        v = pool[key]
        expected = v[[1, 2, 3]].mean(0) - v[[4, 5]].mean(0) + v[[6]].mean(0)
        torch.testing.assert_close(final[key][0], expected)
    assert not torch.equal(final["z"][1], final["z"][0])  # noisy neighbours follow


def test_sweep_varies_one_continuous_code_per_block():
    variant = recording("infogan")
    images, k, _ = sample.code_sweep(variant, args_for(sweep=6))
    assert k == 6 and images.shape[0] == 2 * 10 * 6
    codes = variant.G.calls[0]["codes"].view(2, 10, 6, 12)  # [block, cat, step, code]
    assert torch.equal(codes[1, 4, :, :10].argmax(-1), torch.full((6,), 4))
    torch.testing.assert_close(codes[0, 2, :, 10], torch.linspace(-1, 1, 6))
    assert torch.equal(codes[0, :, :, 11], torch.zeros(10, 6))
    torch.testing.assert_close(codes[1, 9, :, 11], torch.linspace(-1, 1, 6))
    z = variant.G.calls[0]["z"].view(2, 10, 6, -1)
    assert torch.equal(z[0, 5, 0], z[1, 5, 5])  # the row's noise stays fixed


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("apps")
    tiny_mnist(root / "data", n=40, seed=5)
    out = {}
    for model in ("dcgan", "cgan", "infogan"):
        cfg = recipe_config(model, dataset="mnist", data_dir=str(root / "data"),
                                 batch_size=8, max_steps=2, out=str(root / model),
                                 progress=False)
        Trainer(cfg, log=lambda *_: None).fit()
        out[model] = root / model
    return out


APP_CASES = [  # model, flags, (rows, cols) of the written grid
    ("cgan", ["--class-grid"], (10, 10)),
    ("infogan", ["--class-grid"], (10, 10)),
    ("dcgan", ["--interpolate", "6"], (8, 6)),
    ("infogan", ["--interpolate", "4", "--pairs", "0:5,3:9,1:2", "--path", "linear"], (3, 4)),
    ("dcgan", ["--arithmetic", "1,2,3 - 4,5 + 6"], (4, 5)),
    ("cgan", ["--arithmetic", "0 - 1 + 2", "--label", "7"], (4, 3)),
    ("infogan", ["--sweep"], (20, 10)),
    ("infogan", ["--sweep", "5"], (20, 5)),
]


@pytest.mark.parametrize("model, flags, shape", APP_CASES,
                         ids=[f"{m}{''.join(f)}" for m, f, _ in APP_CASES])
def test_app_writes_png(runs, tmp_path, capsys, model, flags, shape):
    out = tmp_path / "app.png"
    code = run_cli(sample.main, ["--checkpoint", str(runs[model]), "--out", str(out), *flags])
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as img:
        assert img.size[::-1] == grid_shape(*shape)  # PIL: (width, height)
    assert "wrote" in capsys.readouterr().out


def test_plain_grid_unchanged(runs, tmp_path):
    out = tmp_path / "plain.png"
    assert run_cli(sample.main, ["--checkpoint", str(runs["dcgan"]), "--out", str(out),
                                 "--n", "12", "--nrow", "4"]) == 0
    with Image.open(out) as img:
        assert img.size[::-1] == grid_shape(3, 4)


BAD = [
    ("dcgan", ["--class-grid"], "needs a cgan or infogan"),
    ("cgan", ["--class-grid", "--label", "2"], "drop --label"),
    ("cgan", ["--sweep"], "needs an infogan model"),
    ("infogan", ["--sweep", "1"], "use 2..64"),
    ("dcgan", ["--interpolate", "1"], "use 2..64"),
    ("dcgan", ["--interpolate", "5", "--pairs", "0-1"], "is not I:J"),
    ("dcgan", ["--interpolate", "5", "--pairs", "0:64"], "out of range 0..63"),
    ("dcgan", ["--interpolate", "5", "--n", "1"], "--n >= 2"),
    ("dcgan", ["--arithmetic", "a=1,2;b=3"], "not valid"),
    ("dcgan", ["--arithmetic", "1 - 99"], "out of range"),
    ("dcgan", ["--arithmetic", "1", "--label", "3"], "needs a conditional model"),
    ("cgan", ["--arithmetic", "1", "--label", "12"], "out of range 0..9"),
    ("dcgan", ["--pairs", "0:1"], "go with --interpolate"),
    ("dcgan", ["--arithmetic", "1", "--path", "linear"], "go with --interpolate"),
    ("dcgan", ["--class-grid", "--sweep"], "not allowed with argument"),
    ("dcgan", ["--interpolate", "4", "--nrow", "3"], "drop --nrow"),
    ("onnx", ["--class-grid"], "needs --checkpoint"),
]


@pytest.mark.parametrize("model, flags, match", BAD, ids=[m for _, _, m in BAD])
def test_app_bad_input_one_line(runs, tmp_path, capsys, model, flags, match):
    src = (["--onnx", str(tmp_path / "g.onnx")] if model == "onnx"
           else ["--checkpoint", str(runs[model])])
    out = tmp_path / "bad.png"
    code = run_cli(sample.main, [*src, "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match.lower() in err.lower(), err
    assert not out.exists()

