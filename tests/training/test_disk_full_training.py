"""The disk fills up during a training run: one line naming the file and the space it needs,
exit code 2 from the CLI, the last good checkpoint intact, nothing half-written, and
``--resume`` then finishes the run exactly as an uninterrupted one.

Where the disk fills is injected (:class:`diskfull.FillingDisk`: always runs) and, where this
process may mount one, met for real on a size-limited tmpfs.
"""

from __future__ import annotations

import json

import pytest
import torch
from diskfull import FillingDisk, fill, leftovers, small_tmpfs
from helpers import tiny_mnist

from gan_accel.checkpoints import list_checkpoints, load_latest_good, read_meta
from gan_accel.cli import train as train_cli
from gan_accel.config import TrainConfig
from gan_accel.errors import DiskFullError, run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config

# 120 images of 20: 6 steps an epoch; checkpoints at 2, 4, 6, 8; the epoch-1 grid at step 6
STEPS, EVERY = 8, 2
RUN_ARGS = ["--dataset", "mnist", "--batch-size", "20", "--max-steps", str(STEPS),
            "--checkpoint-every", str(EVERY), "--keep-last", "2", "--no-progress",
            "--log-every", "1", "--no-compile"]


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("disk-data")
    tiny_mnist(folder, n=120, seed=4)
    return folder


def config(data, out, **kw) -> TrainConfig:
    return recipe_config("dcgan", dataset="mnist", data_dir=str(data), batch_size=20,
                         max_steps=STEPS, checkpoint_every=EVERY, keep_last=2, log_every=1,
                         progress=False, out=str(out), **kw)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    """The weights of the same run with room to spare."""
    trainer = Trainer(config(data, tmp_path_factory.mktemp("disk-ref") / "run"), log=quiet)
    trainer.fit()
    return {k: v.clone() for k, v in trainer.variant.state_dict().items()}


def assert_clean(run, last_good: str) -> None:
    """Nothing half-written: no temporary file, every tensor file named by a checkpoint,
    every metrics line whole, and the newest checkpoint the last good one, verified."""
    assert leftovers(run) == []
    named = {read_meta(p)["tensors"] for p in list_checkpoints(run)}
    assert {p.name for p in (run / "checkpoints").glob("*.safetensors")} == named
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    path, meta, _ = load_latest_good(run)
    assert path.name == last_good


def nth_write_to(name: str, n: int):
    """A FillingDisk predicate: the disk fills at the ``n``-th write to file ``name``."""
    writes = []

    def predicate(path):
        if path.name == name:
            writes.append(path)
        return len(writes) == n
    return predicate


# where the disk fills -> (predicate factory, the file named in the error, last good checkpoint)
FILLS = {
    "tensor file": (lambda: lambda p: p.name.startswith(".ckpt-00000004.safetensors."),
                    "checkpoints/ckpt-00000004.json", "ckpt-00000002.json"),
    "checkpoint JSON": (lambda: lambda p: p.name.startswith(".ckpt-00000004.json."),
                        "checkpoints/ckpt-00000004.json", "ckpt-00000002.json"),
    # one line a step: the third is step 3's, after the checkpoint of step 2
    "metrics line": (lambda: nth_write_to("metrics.jsonl", 3), "metrics.jsonl",
                     "ckpt-00000002.json"),
    # the epoch ends at step 6, after its checkpoint
    "epoch grid": (lambda: lambda p: p.name.startswith(".epoch_001.png."),
                   "samples/epoch_001.png", "ckpt-00000006.json"),
}


@pytest.mark.parametrize("where", list(FILLS))
def test_full_disk_keeps_the_last_good_checkpoint_and_resume_finishes(
        where, data, uninterrupted, tmp_path, monkeypatch):
    make_predicate, named, last_good = FILLS[where]
    run = tmp_path / "run"
    disk = FillingDisk(monkeypatch, tmp_path, fill_at=make_predicate())
    trainer = Trainer(config(data, run), log=quiet)
    with pytest.raises(DiskFullError) as info:
        trainer.fit()
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and msg.startswith("no space left on device: writing ")
    assert f"writing {run}/{named} needs " in msg and "0 bytes free there" in msg, msg
    assert disk.failed, "the disk never filled"
    assert_clean(run, last_good)

    disk.free_up()  # the user frees space and resumes
    resumed = Trainer(config(data, run), log=quiet, resume_from=run)
    assert resumed.pos.step == int(last_good[5:13])
    resumed.fit()
    assert resumed.pos.step == STEPS
    state = resumed.variant.state_dict()
    for k, v in uninterrupted.items():
        assert torch.equal(state[k], v), k


def test_cli_one_line_exit_2_then_resume(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    disk = FillingDisk(monkeypatch, tmp_path,
                       fill_at=lambda p: p.name.startswith(".ckpt-00000006.safetensors"))
    code = run_cli(train_cli.main, [*RUN_ARGS, "--data-dir", str(data), "--out", str(run)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: no space left on device: writing {run}/checkpoints/"
                          "ckpt-00000006.json needs "), err
    assert (f"the last good checkpoint {run}/checkpoints/ckpt-00000004.json is intact; free "
            f"disk space, then continue with --resume {run}") in err
    assert_clean(run, "ckpt-00000004.json")
    disk.free_up()
    assert run_cli(train_cli.main, ["--resume", str(run), "--no-progress"]) == 0
    assert list_checkpoints(run)[-1].name == f"ckpt-{STEPS:08d}.json"
    assert (run / "samples.png").is_file() and (run / "loss.png").is_file()


def test_cli_before_any_checkpoint_says_to_run_again(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    FillingDisk(monkeypatch, tmp_path, free=0)
    code = run_cli(train_cli.main, [*RUN_ARGS, "--data-dir", str(data), "--out", str(run)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"writing {run}/config.json needs " in err, err
    assert leftovers(run) == []


def test_real_full_disk_on_a_small_tmpfs(data, tmp_path, capsys):
    """A real file system fills: a tmpfs with room for the run and one more checkpoint's
    half; safetensors' own writer meets ENOSPC."""
    with small_tmpfs(tmp_path / "disk", 24 << 20) as disk:
        run = disk / "run"
        base = [*RUN_ARGS, "--data-dir", str(data)]
        assert run_cli(train_cli.main, [*base, "--out", str(run), "--max-steps", "4"]) == 0
        ckpt = list_checkpoints(run)[-1]
        size = ckpt.stat().st_size + (run / "checkpoints" / read_meta(ckpt)["tensors"]).stat(
            ).st_size
        filler = fill(disk, leave=size // 2)
        capsys.readouterr()
        code = run_cli(train_cli.main, ["--resume", str(run), "--max-steps", "6",
                                        "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"writing {run}/checkpoints/ckpt-00000006.json needs " in err, err
        assert f"continue with --resume {run}" in err
        assert_clean(run, "ckpt-00000004.json")
        filler.unlink()
        assert run_cli(train_cli.main, ["--resume", str(run), "--max-steps", "6",
                                        "--no-progress"]) == 0
        assert list_checkpoints(run)[-1].name == "ckpt-00000006.json"
        assert_clean(run, "ckpt-00000006.json")
