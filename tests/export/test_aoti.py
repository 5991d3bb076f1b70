"""AOTInductor .pt2 packages: the CLI round trip, parity with eager at any batch, grids and
bulk shards from a .pt2, and a failed parity check that leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gan_accel.export import aoti
from gan_accel.export.aoti import Pt2Generator, export_pt2
from gan_accel.export.onnx_export import ExportError
from gan_accel.export.runtime import ModelFileError
from helpers import tiny_mnist
from PIL import Image

from gan_accel.checkpoints import load_trained
from gan_accel.cli import export as export_cli
from gan_accel.cli import sample
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config


@pytest.fixture(scope="module")
def pt2(tmp_path_factory):
    """(run dir, .pt2 path, CLI output): a 2-step DCGAN run exported with --format pt2."""
    root = tmp_path_factory.mktemp("pt2")
    tiny_mnist(root / "data", n=40, seed=5)
    cfg = recipe_config("dcgan", dataset="mnist", data_dir=str(root / "data"),
                             batch_size=8, max_steps=2, out=str(root / "run"), progress=False,
                             seed=3)
    Trainer(cfg, log=lambda *_: None).fit()
    path = root / "g.pt2"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_cli(export_cli.main, ["--checkpoint", str(root / "run"), "--out", str(path),
                                         "--format", "pt2", "--threads", "1"])
    assert code == 0, out.getvalue()
    return root / "run", path, out.getvalue()


@pytest.mark.slow
def test_pt2_round_trip_matches_eager_at_any_batch(pt2):
    run, path, text = pt2
    assert "validated batch  64" in text and "AOTInductor for cpu (1 threads)" in text
    variant, meta = load_trained(run)
    gen = Pt2Generator(path)
    assert (gen.meta.variant, gen.meta.step, gen.meta.ema) == ("dcgan", 2, meta["ema"])
    assert gen.meta.exporter == "aoti" and gen.meta.source.endswith("ckpt-00000002.json")
    assert gen.engine["engine"] == "aoti" and gen.engine["dynamic_batch"]
    assert gen.engine["compiled_threads"] == "1"
    for n, seed in ((1, 0), (5, 1), (33, 2)):  # none of these was the export's example batch
        feeds = gen.latent(n, seed=seed)
        with torch.no_grad():
            want = variant.G(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
        got = gen.run(**feeds)
        assert got.shape == (n, 1, 28, 28) and got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-5, (n, np.abs(got - want).max())


@pytest.mark.slow
def test_grid_and_bulk_from_pt2_match_the_checkpoint(pt2, tmp_path, capsys):
    run, path, _ = pt2
    common = ["--n", "16", "--seed", "4"]
    assert run_cli(sample.main, ["--pt2", str(path), *common, "--out",
                                 str(tmp_path / "pt2.png")]) == 0
    assert run_cli(sample.main, ["--checkpoint", str(run), *common, "--out",
                                 str(tmp_path / "ckpt.png")]) == 0
    a = np.asarray(Image.open(tmp_path / "pt2.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "ckpt.png"), dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1 and a.std() > 1
    from gan_accel.export.bulk import read_shards

    bulk = ["--n", "300", "--shard-size", "128", "--batch", "100", "--no-progress"]
    assert run_cli(sample.main, ["--pt2", str(path), *bulk, "--out", str(tmp_path / "p")]) == 0
    assert run_cli(sample.main, ["--checkpoint", str(run), *bulk, "--out",
                                 str(tmp_path / "c")]) == 0
    x, y = read_shards(tmp_path / "p")["images"], read_shards(tmp_path / "c")["images"]
    assert x.shape == (300, 28, 28) and np.abs(x.astype(int) - y).max() <= 1
    assert "aoti cpu" in capsys.readouterr().out


@pytest.mark.slow
def test_failed_parity_writes_nothing(pt2, tmp_path, monkeypatch):
    run, package, _ = pt2
    out = tmp_path / "g.pt2"
    out.write_bytes(b"previous package")
    monkeypatch.setattr(aoti, "FP32_TOLERANCE", -1.0)  # every error is now too big
    # the fixture's package stands in for a second compile (the same graph, ~20 s saved)
    monkeypatch.setattr(aoti, "_compile", lambda *args: package.read_bytes())
    variant, _ = load_trained(run)
    with pytest.raises(ExportError, match="differs from eager PyTorch .* nothing was written"):
        export_pt2(variant, out)
    assert out.read_bytes() == b"previous package"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt2"]  # no temp package left


def test_bad_packages_name_the_file(tmp_path, capsys):
    with pytest.raises(ModelFileError, match="missing.pt2 does not exist"):
        Pt2Generator(tmp_path / "missing.pt2")
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip" * 20)
    with pytest.raises(ModelFileError, match="junk.pt2 is not a loadable AOTInductor package"):
        Pt2Generator(junk)
    code = run_cli(sample.main, ["--pt2", str(junk), "--n", "4", "--out",
                                 str(tmp_path / "g.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "junk.pt2" in err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pt2_for_cuda(pt2, tmp_path):
    run, _, _ = pt2
    variant, _ = load_trained(run)
    report = export_pt2(variant, tmp_path / "g-cuda.pt2", device="cuda")
    assert max(report["max_abs_err"].values()) <= aoti.CUDA_TOLERANCE
    gen = Pt2Generator(tmp_path / "g-cuda.pt2")
    assert gen.device.type == "cuda" and gen.sample(8, seed=0).shape == (8, 1, 28, 28)
