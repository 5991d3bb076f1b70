"""The disk fills up during an export (ONNX fp32 / fp16 / int8, AOTInductor .pt2) or bulk
sampling: one line naming the file and the space it needs (exit code 2 from the CLIs), no
half-written file, and a rerun of the same bulk command writes only the missing shards.

Where the disk fills is injected (:class:`diskfull.FillingDisk`: always runs) and, where this
process may mount one, met for real on a size-limited tmpfs (onnxruntime's C++ writer too).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from diskfull import FillingDisk, fill, leftovers, small_tmpfs
from gan_accel.export import aoti
from gan_accel.export.bulk import read_shards
from gan_accel.export.onnx_export import export_generator
from gan_accel.export.quantize import Calibration, Gate, quantize_generator
from gan_accel.export.runtime import CPU, OnnxGenerator
from torch import nn

from gan_accel.cli import sample
from gan_accel.errors import DiskFullError, format_bytes, run_cli
from gan_accel.latent import LatentSpec
from gan_accel.variants import build_variant, recipe_config

QUICK_CALIBRATION = Calibration(batches=2, batch_size=16)


@pytest.fixture(scope="module")
def dcgan():
    torch.manual_seed(0)
    return build_variant(recipe_config("dcgan")).eval()


class TinyG(nn.Module):
    """A fast conditional generator for bulk runs: [z, one-hot label] -> Linear -> 28x28."""

    def __init__(self, z_dim: int = 8, classes: int = 10):
        super().__init__()
        self.classes = classes
        self.fc = nn.Linear(z_dim + classes, 28 * 28)

    def forward(self, z, label):
        x = torch.cat([z, nn.functional.one_hot(label, self.classes).float()], 1)
        return torch.sigmoid(self.fc(x) * 3).view(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An exported TinyG (.onnx), outside the disks the tests fill."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("disk-tiny") / "tiny.onnx"
    export_generator(TinyG().eval(), path, meta={"latent": LatentSpec(z_dim=8, num_classes=10),
                                                 "variant": "tiny", "output_range": "unit"})
    return path


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert len(msg.splitlines()) == 1, msg
    return msg


# ---------------------------------------------------------------------------------------------
# exports
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_onnx_export_on_a_full_disk_names_the_model_and_its_size(dcgan, tmp_path, monkeypatch,
                                                                fp16):
    out = tmp_path / "g.onnx"
    disk = FillingDisk(monkeypatch, tmp_path, free=50_000)
    with pytest.raises(DiskFullError) as info:
        export_generator(dcgan, out, fp16=fp16)
    assert leftovers(tmp_path) == [] and not out.exists()
    disk.free_up()
    size = export_generator(dcgan, out, fp16=fp16)["size_bytes"]
    assert one_line(info) == (f"no space left on device: writing {out} needs "
                              f"{format_bytes(size)}, 0 bytes free there; nothing was written; "
                              "free disk space or pass an --out on another disk")


@pytest.mark.parametrize("where", ["fp32 model", "int8 model"])
def test_int8_export_on_a_full_disk_leaves_nothing(dcgan, tmp_path, monkeypatch, where):
    """The int8 path writes an fp32 model, then onnxruntime's quantizer writes the int8 one
    (through Python's file objects): the disk fills at either."""
    out = tmp_path / "g-int8.onnx"
    if where == "fp32 model":
        FillingDisk(monkeypatch, tmp_path, free=50_000)
    else:
        FillingDisk(monkeypatch, tmp_path, fill_at=lambda p: p.name == "int8.onnx")
    with pytest.raises(DiskFullError) as info:
        quantize_generator(dcgan, out, calibration=QUICK_CALIBRATION, gate=Gate(samples=200))
    msg = one_line(info)
    assert msg.startswith(f"no space left on device: writing {out} needs "), msg
    assert msg.endswith("0 bytes free there; nothing was written; free disk space or pass an "
                        "--out on another disk"), msg
    assert list(tmp_path.iterdir()) == []


def test_pt2_export_on_a_full_disk_names_the_package_and_its_size(dcgan, tmp_path,
                                                                  monkeypatch):
    """The package is written after AOTInductor compiled it (tests/export/test_aoti.py
    compiles for real; here the compiler's output is stand-in bytes: the write is what a
    full disk meets)."""
    package = b"\x50\x4b" * 150_000
    monkeypatch.setattr(aoti, "_compile", lambda *args: package)
    out = tmp_path / "g.pt2"
    FillingDisk(monkeypatch, tmp_path, free=10_000)
    with pytest.raises(DiskFullError) as info:
        aoti.export_pt2(dcgan, out)
    assert one_line(info) == (f"no space left on device: writing {out} needs "
                              f"{format_bytes(len(package))}, 0 bytes free there; nothing was "
                              "written; free disk space or pass an --out on another disk")
    assert list(tmp_path.iterdir()) == []


def test_pt2_compile_cache_on_a_full_disk_is_one_line(dcgan, tmp_path, monkeypatch):
    def compile_fails(*args, **kwargs):  # what Inductor raises when its cache's disk is full
        try:
            raise OSError(28, "No space left on device", "/tmp/torchinductor_x/ab/cd.so")
        except OSError as exc:
            raise RuntimeError("C++ compile error") from exc

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", compile_fails)
    with pytest.raises(DiskFullError) as info:
        aoti.export_pt2(dcgan, tmp_path / "g.pt2")
    assert one_line(info).startswith("no space left on device: compiling into Inductor's "
                                     "cache ")
    assert "TORCHINDUCTOR_CACHE_DIR" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# bulk sampling
# ---------------------------------------------------------------------------------------------
def bulk(tiny, out, fmt="npz", n=2500):
    return run_cli(sample.main, ["--onnx", str(tiny), "--n", str(n), "--out", str(out),
                                 "--shard-size", "1000", "--batch", "500", "--seed", "3",
                                 "--shard-format", fmt, "--no-progress", "--threads", "1"])


def shards(out, fmt):
    """The images, labels and file names of a bulk folder (.npz members are compared as
    arrays: a zip records when it was written)."""
    if fmt == "npz":
        return {k: v.tobytes() for k, v in read_shards(out).items()}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "bulk.json"}


@pytest.mark.parametrize("fmt", ["npz", "png"])
def test_bulk_on_a_full_disk_keeps_complete_shards_and_resumes(tiny, tmp_path, monkeypatch,
                                                               capsys, fmt):
    out = tmp_path / "disk" / "shards"
    out.parent.mkdir()
    name = "shard-000001" + (".npz" if fmt == "npz" else "")
    disk = FillingDisk(monkeypatch, tmp_path / "disk",
                       fill_at=lambda p: f".{name}." in p.as_posix())
    assert bulk(tiny, out, fmt) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: no space left on device: writing {out / name} needs "), err
    assert err.endswith(f"0 bytes free there; 1 of 3 shards are complete in {out}; free disk "
                        "space, then run the same command again to write the rest"), err
    assert leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["bulk.json", "shard-000000" + (".npz" if fmt == "npz" else "")])
    assert json.loads((out / "bulk.json").read_text())["status"] == "running"

    disk.free_up()  # the same command again: writes shards 1 and 2 only
    assert bulk(tiny, out, fmt) == 0
    assert json.loads((out / "bulk.json").read_text())["resumed_shards"] == 1
    assert bulk(tiny, tmp_path / "clean", fmt) == 0
    assert shards(out, fmt) == shards(tmp_path / "clean", fmt)


def test_bulk_refuses_before_any_work_when_the_shards_cannot_fit(tiny, tmp_path, monkeypatch,
                                                                capsys):
    out = tmp_path / "shards"
    FillingDisk(monkeypatch, tmp_path, free=100_000)
    assert bulk(tiny, out) == 2
    err = capsys.readouterr().err.strip()
    need = 2500 * (28 * 28 + 8)  # uint8 pixels and an int64 label per image
    free = 100_000 - (out / "bulk.json").stat().st_size  # the manifest came first
    assert err == (f"error: not enough disk space: sampling 2,500 images into {out} needs at "
                   f"least {format_bytes(need)}, {format_bytes(free)} free there; free disk "
                   "space or pass another --out"), err
    assert sorted(p.name for p in out.iterdir()) == ["bulk.json"]


# ---------------------------------------------------------------------------------------------
# a real small file system
# ---------------------------------------------------------------------------------------------
def test_real_full_disk_on_a_small_tmpfs(dcgan, tiny, tmp_path, capsys):
    """On a real full disk: the ONNX export, PNG shards (no up-front check: their size
    depends on the images) and onnxruntime's optimised graph, which its C++ writer saves
    beside the model (a cache: the session runs without it and says so)."""
    with small_tmpfs(tmp_path / "disk", 16 << 20) as disk:
        filler = fill(disk, leave=200_000)
        with pytest.raises(DiskFullError) as info:
            export_generator(dcgan, disk / "g.onnx")
        assert one_line(info).startswith(f"no space left on device: writing {disk}/g.onnx "
                                         "needs ")
        assert leftovers(disk) == [] and not (disk / "g.onnx").exists()

        model = disk / "tiny.onnx"
        shutil.copy(tiny, model)
        filler.unlink()
        filler = fill(disk, leave=4096)
        gen = OnnxGenerator(model, providers=[CPU], threads=1)
        assert "no space left" in gen.engine["optimized_model_note"]
        assert gen.engine["optimized_model"] is None and leftovers(disk) == []
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "tiny.onnx"]
        assert np.isfinite(gen.sample(4, seed=0)).all()
        assert "optimised graph not saved" in capsys.readouterr().err

        filler.unlink()
        fill(disk, leave=6 << 20)  # one PNG shard fits: 1,000 files of a 4 KiB page each
        out = disk / "shards"
        assert bulk(tiny, out, "png") == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert f"writing {out}/shard-000001 needs " in err and "1 of 3 shards" in err, err
        assert leftovers(out) == []
        assert read_shards(out) == {}  # PNG shards: none as .npz
        assert len(list((out / "shard-000000").glob("*.png"))) == 1000
