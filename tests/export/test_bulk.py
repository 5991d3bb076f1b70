"""Bulk sampling (``python -m gan_accel.sample --out DIR``): the same bytes whatever the shard
size, resume after an interrupted run, refusal of another run's folder, PNG shards, and
peak memory that does not grow with --n (measured in subprocesses)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gan_accel.export import bulk
from gan_accel.export.bulk import BulkPlan, latents, read_shards
from gan_accel.export.onnx_export import export_generator
from helpers import run_module
from PIL import Image
from torch import nn

from gan_accel.cli import sample
from gan_accel.errors import run_cli
from gan_accel.latent import LatentSpec


class TinyG(nn.Module):
    """A fast conditional generator: [z, one-hot label] -> Linear -> Sigmoid -> 28x28."""

    def __init__(self, z_dim: int = 8, classes: int = 10):
        super().__init__()
        self.classes = classes
        self.fc = nn.Linear(z_dim + classes, 28 * 28)

    def forward(self, z, label):
        x = torch.cat([z, nn.functional.one_hot(label, self.classes).float()], 1)
        return torch.sigmoid(self.fc(x) * 3).view(-1, 1, 28, 28)


SPEC = LatentSpec(z_dim=8, num_classes=10)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An exported conditional TinyG (.onnx)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bulk") / "tiny.onnx"
    export_generator(TinyG().eval(), path, meta={"latent": SPEC, "variant": "tiny",
                                                 "output_range": "unit"})
    return path


def bulk_run(tiny, out, *extra, n: int = 2500):
    return run_cli(sample.main, ["--onnx", str(tiny), "--n", str(n), "--out", str(out),
                                 "--no-progress", "--threads", "1", *map(str, extra)])


def test_latents_depend_only_on_seed_and_index():
    whole = latents(SPEC, 7, 0, 3000)
    part = latents(SPEC, 7, 1000, 1100)  # crosses no block edge / starts inside a block
    edge = latents(SPEC, 7, 1020, 2050)  # crosses two block edges
    for k in ("z", "label"):
        np.testing.assert_array_equal(part[k], whole[k][1000:1100])
        np.testing.assert_array_equal(edge[k], whole[k][1020:2050])
    assert np.abs(latents(SPEC, 8, 0, 100)["z"] - whole["z"][:100]).max() > 0.1
    np.testing.assert_array_equal(latents(SPEC, 7, 5, 9, label=3)["label"], 3)


def test_same_images_whatever_the_shard_size(tiny, tmp_path, capsys):
    runs = {}
    for size in (300, 1000, 2500):
        assert bulk_run(tiny, tmp_path / f"s{size}", "--shard-size", size, "--batch", 512,
                        "--seed", 5) == 0
        runs[size] = read_shards(tmp_path / f"s{size}")
    out = capsys.readouterr().out
    assert "images/s" in out and "peak RSS" in out
    assert len(list((tmp_path / "s300").glob("shard-*.npz"))) == 9
    ref = runs[2500]
    assert ref["images"].shape == (2500, 28, 28) and ref["images"].dtype == np.uint8
    assert ref["images"].std() > 10  # real pictures, not a constant
    for size in (300, 1000):
        for key in ("images", "labels"):
            np.testing.assert_array_equal(runs[size][key], ref[key], err_msg=f"{size} {key}")
    shard = np.load(tmp_path / "s300" / "shard-000003.npz")
    assert int(shard["start"]) == 900 and shard["images"].shape == (300, 28, 28)
    want = latents(SPEC, 5, 0, 2500)["label"]
    np.testing.assert_array_equal(ref["labels"], want)  # the label each image was drawn with
    from gan_accel.export.runtime import OnnxGenerator

    gen = OnnxGenerator(tiny, threads=1)
    feeds = latents(SPEC, 5, 1500, 1600)
    np.testing.assert_array_equal(bulk.to_uint8(gen.run(**feeds), "unit"),
                                  ref["images"][1500:1600])
    manifest = json.loads((tmp_path / "s300" / "bulk.json").read_text())
    assert manifest["status"] == "complete" and manifest["generated"] == 2500
    assert 0 < manifest["engine_seconds"] <= manifest["seconds"]
    assert 0 < manifest["engine_share"] <= 1
    assert manifest["engine"]["graph_optimization_level"] == "all"  # engine choices recorded
    assert manifest["engine"]["intra_op_threads"] == 1


def test_resume_after_an_interrupted_run(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_savez = np.savez
    calls = []

    def killed_on_the_third(file, **arrays):
        calls.append(1)
        if len(calls) == 3:  # the process dies half-way through writing shard 2
            file.write(b"PK\x03\x04 half a shard")
            raise KeyboardInterrupt
        return real_savez(file, **arrays)

    monkeypatch.setattr(np, "savez", killed_on_the_third)
    assert bulk_run(tiny, out, "--shard-size", 500, "--batch", 384) == 130
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-000000.npz",
                                                           "shard-000001.npz"]
    # a process killed half-way through a write leaves its hidden temporary: never counted
    # as done, removed by the resume
    (out / ".shard-000002.npz.1a2b3c4d.tmp").write_bytes(b"PK\x03\x04 half a shard")
    assert json.loads((out / "bulk.json").read_text())["status"] == "running"
    monkeypatch.undo()
    capsys.readouterr()
    assert bulk_run(tiny, out, "--shard-size", 500, "--batch", 384) == 0
    text = capsys.readouterr().out
    assert "resuming: 2 of 5 shards already there" in text and "wrote 1,500 images" in text
    assert not list(out.glob(".shard-*"))
    assert bulk_run(tiny, tmp_path / "clean", "--shard-size", 500, "--batch", 384) == 0
    resumed, clean = read_shards(out), read_shards(tmp_path / "clean")
    np.testing.assert_array_equal(resumed["images"], clean["images"])
    np.testing.assert_array_equal(resumed["labels"], clean["labels"])
    assert bulk_run(tiny, out, "--shard-size", 500, "--batch", 384) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_another_runs_folder_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert bulk_run(tiny, out, "--shard-size", 1000, n=1200) == 0
    capsys.readouterr()
    for extra, what in ((["--seed", 1], "seed 0 there, 1 now"),
                        (["--shard-size", 600], "shard_size 1000 there, 600 now"),
                        (["--label", 3], "label None there, 3 now")):
        assert bulk_run(tiny, out, "--shard-size", 1000, *extra, n=1200) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "holds shards of another run" in err, err
        assert what.split(",")[0] in err, err


def test_png_shards_hold_the_same_pixels(tiny, tmp_path):
    assert bulk_run(tiny, tmp_path / "png", "--shard-format", "png", "--shard-size", 20,
                    "--label", 4, n=50) == 0
    assert bulk_run(tiny, tmp_path / "npz", "--shard-size", 20, "--label", 4, n=50) == 0
    folders = sorted((tmp_path / "png").glob("shard-*"))
    assert [f.name for f in folders] == ["shard-000000", "shard-000001", "shard-000002"]
    pngs = sorted(p for f in folders for p in f.glob("*.png"))
    assert [p.name for p in pngs[:2]] == ["000000000.png", "000000001.png"] and len(pngs) == 50
    images = np.stack([np.asarray(Image.open(p)) for p in pngs])
    npz = read_shards(tmp_path / "npz")
    np.testing.assert_array_equal(images, npz["images"])
    np.testing.assert_array_equal(npz["labels"], 4)
    assert (folders[2] / "labels.csv").read_text().splitlines()[1] == "000000040.png,4"


def test_peak_memory_does_not_grow_with_n(tiny, tmp_path):
    """10,000 vs 100,000 images in fresh processes: peak RSS within a few MB (holding the
    uint8 images of the run would add 70 MB, their float32 output 280 MB)."""
    rss = {}
    for n in (10_000, 100_000):
        out = tmp_path / f"n{n}"
        proc = run_module("gan_accel.sample", "--onnx", str(tiny), "--n", str(n), "--out",
                          str(out), "--shard-size", "1000", "--batch", "1000", "--threads", "1",
                          "--no-progress", timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"wrote {n:,} images" in proc.stdout and "images/s" in proc.stdout
        doc = json.loads((out / "bulk.json").read_text())
        assert doc["generated"] == n and len(list(out.glob("shard-*.npz"))) == n // 1000
        rss[n] = doc["peak_rss_mb"]
    print("peak RSS MB", rss)
    assert rss[100_000] - rss[10_000] < 15, rss


@pytest.mark.parametrize("argv, match", [
    (["--shard-size", "0", "--out", "{tmp}/d"], "--shard-size must be >= 1"),
    (["--batch", "0", "--out", "{tmp}/d"], "--batch must be >= 1"),
    (["--seed", "-1", "--out", "{tmp}/d"], "--seed must be >= 0"),
    (["--out", "{tmp}/images.npz"], "must end in .png (one grid) or name a folder"),
    (["--out", "{tmp}/no/such/d"], "does not exist"),
    (["--shard-size", "10", "--out", "{tmp}/g.png"], "--shard-size goes with bulk sampling"),
    (["--n", "5000", "--out", "{tmp}/g.png"], "too many for one PNG grid"),
    (["--label", "12", "--out", "{tmp}/d"], "--label 12 is out of range 0..9"),
    (["--nrow", "4", "--out", "{tmp}/d"], "--nrow lays out a grid"),
])
def test_bad_bulk_options_are_one_line(tiny, tmp_path, capsys, argv, match):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code = run_cli(sample.main, ["--onnx", str(tiny), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and match in err, err
    assert not (tmp_path / "d").exists()


def test_plan_checks_its_numbers():
    assert BulkPlan(n=10, shard_size=4).shards == 3
    assert BulkPlan(n=10, shard_size=4).bounds(2) == (8, 10)
    for bad in ({"n": 0}, {"n": 5, "shard_size": 0}, {"n": 5, "seed": -1},
                {"n": 5, "shard_format": "tar"}):
        with pytest.raises(ValueError):
            BulkPlan(**bad)
