"""Hostile files: each is one line naming the file, exit code 2, nothing written, and no
gigabytes read or allocated.

Checkpoints (through ``sample --checkpoint`` and ``train --resume``): a tensor file whose
header claims more bytes than exist, a JSON with wrong types, a checkpoint missing a tensor.
Data (through ``train --data-dir``): an IDX header claiming 2^31 images, a 10 GB sparse file.
The crafted checkpoints carry a matching SHA-256, so the parsers are tested, not the checksum.
"""

import gzip
import json
import shutil
import struct
import tracemalloc

import numpy as np
import pytest
from helpers import tiny_mnist, write_idx
from safetensors.torch import load_file, save_file

from gan_accel.checkpoints import list_checkpoints, sha256_file
from gan_accel.cli import sample, train
from gan_accel.data import idx
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config

MAX_PEAK = 64 << 20  # bytes a hostile file may make Python allocate while being refused


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    tiny_mnist(root / "data", n=16, seed=9)
    cfg = recipe_config("dcgan", dataset="mnist", data_dir=str(root / "data"),
                             batch_size=8, max_steps=2, out=str(root / "run"), progress=False,
                             ema=0.9)
    Trainer(cfg, log=lambda *_: None).fit()
    return root


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def refused(capsys, main, argv, names):
    """Run a CLI: exit 2, one line, naming one of ``names``; returns the line."""
    tracemalloc.start()
    try:
        code = run_cli(main, argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert any(str(n) in err for n in names), (names, err)
    assert peak < MAX_PEAK, f"{peak / 2**20:.0f} MiB allocated while refusing"
    return err


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def _files(run):
    json_path = list_checkpoints(run)[-1]
    meta = json.loads(json_path.read_text())
    return json_path, meta, json_path.parent / meta["tensors"]


def _reseal(json_path, meta, st_path):
    """Write ``meta`` with the SHA-256 of the (modified) tensor file: a crafted pair."""
    meta["sha256"] = sha256_file(st_path)
    json_path.write_text(json.dumps(meta))


def header_claims_more_than_exists(run):
    json_path, meta, st = _files(run)
    st.write_bytes(st.read_bytes()[:-4096])  # the header's offsets run past the end
    _reseal(json_path, meta, st)


def header_length_past_the_end(run):
    json_path, meta, st = _files(run)
    blob = st.read_bytes()
    st.write_bytes(struct.pack("<Q", 1 << 40) + blob[8:])  # a 1 TiB header in a small file
    _reseal(json_path, meta, st)


def _set(path, value):
    def corrupt(run):
        json_path, meta, _ = _files(run)
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        json_path.write_text(json.dumps(meta))
    return corrupt


def tensors_outside_the_folder(run):
    """The JSON names a complete, checksummed tensor file two folders up: refused all the same."""
    json_path, meta, st = _files(run)
    outside = run.parent / "elsewhere.safetensors"
    shutil.copy(st, outside)
    meta["tensors"] = "../../elsewhere.safetensors"
    json_path.write_text(json.dumps(meta))


def _drop_tensor(prefix):
    def corrupt(run):
        json_path, meta, st = _files(run)
        tensors = load_file(str(st))
        del tensors[next(k for k in sorted(tensors) if k.startswith(prefix))]
        save_file(tensors, str(st))
        _reseal(json_path, meta, st)
    return corrupt


HOSTILE_CHECKPOINTS = {
    "safetensors header claims more bytes than exist": header_claims_more_than_exists,
    "safetensors header length past the end": header_length_past_the_end,
    "tensors is a number": _set(["tensors"], 5),
    "tensors outside the folder": tensors_outside_the_folder,
    "sha256 is a list": _set(["sha256"], [1, 2]),
    "config is a string": _set(["config"], "dcgan"),
    "config.batch_size is a string": _set(["config", "batch_size"], "64"),
    "config.lr_g is negative": _set(["config", "lr_g"], -1.0),
    "config.model unknown": _set(["config", "model"], "nope"),
    "position.step is a string": _set(["position", "step"], "2"),
    "state is a list": _set(["state"], []),
    "a model weight is missing": _drop_tensor("model.D."),
    "an EMA generator weight is missing": _drop_tensor("ema.module."),
    "an optimizer moment is missing": _drop_tensor("optim.D."),
}


@pytest.mark.parametrize("case", list(HOSTILE_CHECKPOINTS))
def test_hostile_checkpoint_is_refused_by_sample_and_resume(capsys, tmp_path, good_run, case):
    run = tmp_path / "run"
    shutil.copytree(good_run / "run", run)
    HOSTILE_CHECKPOINTS[case](run)
    json_path = list_checkpoints(run)[-1]
    names = [json_path.name, *(p.name for p in run.glob("checkpoints/*.safetensors"))]
    before = snapshot(run)
    out = tmp_path / "grid.png"
    refused(capsys, sample.main, ["--checkpoint", str(run), "--out", str(out)], names)
    assert not out.exists()
    refused(capsys, train.main, ["--resume", str(run), "--no-progress"], names)
    assert snapshot(run) == before


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def _train_on(capsys, tmp_path, data, images):
    out = tmp_path / "run"
    err = refused(capsys, train.main, ["--dataset", "mnist", "--data-dir", str(data),
                                       "--out", str(out), "--no-progress", "--max-steps", "1"],
                  [images.name])
    assert not out.exists()
    return err


def _labels(folder, n=16):
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10, 2049)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_header_claiming_2_31_images_fails_fast(capsys, tmp_path, gz):
    data = tmp_path / "data"
    data.mkdir()
    _labels(data)
    header = struct.pack(">IIII", 2051, 2**31, 28, 28)
    images = data / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    blob = header + bytes(28 * 28 * 16)
    images.write_bytes(gzip.compress(blob) if gz else blob)
    err = _train_on(capsys, tmp_path, data, images)
    assert "2147483648" in err.replace(",", "")


SPARSE = 10 * 2**30


def _sparse(path, header: bytes, size: int) -> None:
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(size)


N_10GB = (SPARSE - 16) // 784  # images in a 10 GB file whose header tells the truth


@pytest.mark.parametrize("header, size, match", [
    (b"", SPARSE, "wrong magic number"),  # 10 GB of zeros
    (struct.pack(">IIII", 2051, 60000, 28, 28), SPARSE, "needs 47040000"),  # disagrees
    (struct.pack(">IIII", 2051, N_10GB, 28, 28), 16 + N_10GB * 784, "this machine has"),
], ids=["zeros", "mnist header", "consistent header"])
def test_a_10gb_sparse_data_file_is_never_read(capsys, tmp_path, monkeypatch, header, size,
                                               match):
    monkeypatch.setattr(idx, "physical_memory", lambda: 16 * 2**30)  # any machine: 16 GiB
    data = tmp_path / "data"
    data.mkdir()
    _labels(data)
    images = data / "train-images-idx3-ubyte"
    _sparse(images, header, size)
    assert images.stat().st_size >= 10 * 10**9 and images.stat().st_blocks * 512 < 2**20
    assert match in _train_on(capsys, tmp_path, data, images)
