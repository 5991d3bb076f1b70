"""Crash safety, exact resume after SIGKILL, corrupt checkpoints and the divergence guard."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, tiny_mnist
from safetensors.torch import load_file

from gan_accel.checkpoints import list_checkpoints, load_latest_good
from gan_accel.config import TrainConfig
from gan_accel.errors import CheckpointError, UserError
from gan_accel.training.trainer import Trainer


def quiet(*_):
    pass


def train_cmd(data, out, *extra):
    return [sys.executable, "-m", "gan_accel.train", "--dataset", "mnist", "--data-dir",
            str(data), "--batch-size", "20", "--epochs", "12", "--checkpoint-every", "2",
            "--keep-last", "2", "--ema", "0.9", "--no-progress", "--log-every", "1",
            "--out", str(out), *extra]


def final_weights(run: Path) -> dict:
    ckpt = list_checkpoints(run)[-1]
    tensors = load_file(str(ckpt.with_suffix(".safetensors")))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "ema."))}


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """A run killed with SIGKILL mid-training and resumed ends with weights bit-identical to an
    uninterrupted run (CPU, fixed seed, same thread count)."""
    data = tmp_path / "data"
    tiny_mnist(data, n=200, seed=2)  # 10 steps per epoch, 120 steps in all
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(train_cmd(data, tmp_path / "full"), cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=600)
    # Kill as soon as a checkpoint past step 10 exists: mid-epoch, between two checkpoints.
    victim = subprocess.Popen(train_cmd(data, tmp_path / "killed"), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list_checkpoints(tmp_path / "killed")
        if found and int(found[-1].stem[5:]) >= 11:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    killed_at = int(list_checkpoints(tmp_path / "killed")[-1].stem[5:])
    assert 11 <= killed_at < 120, killed_at
    subprocess.run(train_cmd(data, tmp_path / "killed", "--resume", str(tmp_path / "killed")),
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def tiny_trainer(tmp_path, name="run", **kw):
    data = tmp_path / "data"
    if not data.is_dir():
        tiny_mnist(data, n=120, seed=4)
    cfg = TrainConfig.preset("dcgan", dataset="mnist", data_dir=str(data), batch_size=20,
                             out=str(tmp_path / name), progress=False, **kw)
    return Trainer(cfg, log=quiet)


def test_partial_write_is_ignored_and_corrupt_latest_names_previous(tmp_path):
    t = tiny_trainer(tmp_path, epochs=2, checkpoint_every=3, keep_last=5)
    t.fit()
    run = t.run_dir
    names = [p.name for p in list_checkpoints(run)]
    assert names == ["ckpt-00000003.json", "ckpt-00000006.json", "ckpt-00000009.json",
                     "ckpt-00000012.json"]
    # a kill between the tensor file and its JSON leaves an orphan: it is not a checkpoint
    (run / "checkpoints" / "ckpt-00000099.safetensors").write_bytes(b"partial")
    path, meta, _ = load_latest_good(run)
    assert path.name == "ckpt-00000012.json" and meta["position"]["step"] == 12
    # flip bytes in the newest tensor file: the checksum catches it
    st = run / "checkpoints" / "ckpt-00000012.safetensors"
    blob = bytearray(st.read_bytes())
    blob[-10:] = b"\xff" * 10
    st.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="checksum") as info:
        load_latest_good(run)
    assert "ckpt-00000009.json" in str(info.value)
    # and resuming from that previous one works
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    resumed = Trainer(cfg, log=quiet, resume_from=run / "checkpoints" / "ckpt-00000009.json")
    assert resumed.pos.step == 9


def test_keep_last_prunes_old_checkpoints(tmp_path):
    t = tiny_trainer(tmp_path, epochs=2, checkpoint_every=2, keep_last=2)
    t.fit()
    assert [p.name for p in list_checkpoints(t.run_dir)] == ["ckpt-00000010.json",
                                                             "ckpt-00000012.json"]


def _poison(trainer, at_step):
    """Make the D loss NaN once, at ``at_step``."""
    phase = trainer.phases[0]
    original = phase.loss
    fired = []

    def loss(batch):
        value, logs = original(batch)
        if trainer.pos.step == at_step and not fired:
            fired.append(True)
            value = value * float("nan")
        return value, logs

    trainer.loss_fns[phase.name] = loss


def test_divergence_stops_naming_step_and_last_good_checkpoint(tmp_path):
    t = tiny_trainer(tmp_path, epochs=3, checkpoint_every=4)
    _poison(t, at_step=9)
    with pytest.raises(UserError) as info:
        t.fit()
    msg = str(info.value)
    assert "step 9" in msg and "ckpt-00000008.json" in msg and "nan" in msg.lower()
    # the weights were never stepped with the NaN loss, and no checkpoint holds NaN
    assert all(torch.isfinite(v).all() for v in t.variant.state_dict().values()
               if v.is_floating_point())
    assert list_checkpoints(t.run_dir)[-1].name == "ckpt-00000008.json"


def test_divergence_rollback_halves_lr_and_finishes(tmp_path):
    t = tiny_trainer(tmp_path, epochs=3, checkpoint_every=4, on_nan="rollback")
    lr0 = t.optims["D"].param_groups[0]["lr"]
    _poison(t, at_step=9)
    t.fit()
    assert t.pos.step == 18 and t.pos.rollbacks == 1
    assert t.optims["D"].param_groups[0]["lr"] <= lr0 * 0.5


def test_nan_weights_never_written(tmp_path):
    t = tiny_trainer(tmp_path, epochs=1)
    t.fit()
    before = [p.name for p in list_checkpoints(t.run_dir)]
    with torch.no_grad():
        next(t.variant.G.parameters()).fill_(float("nan"))
    with pytest.raises(UserError, match="non-finite"):
        t.save()
    assert [p.name for p in list_checkpoints(t.run_dir)] == before


def test_no_pickle_loading_anywhere():
    """Loading never executes code from a file: no pickle, no torch.load without
    weights_only=True in the package sources."""
    offenders = []
    for pkg in ("gan_accel", "export", "bench", "kernels"):
        for path in (REPO / pkg).rglob("*.py"):
            text = path.read_text()
            if "pickle.load" in text or "import pickle" in text:
                offenders.append(str(path))
            for line in text.splitlines():
                if "torch.load(" in line and "weights_only=True" not in line:
                    offenders.append(f"{path}: {line.strip()}")
    assert not offenders, offenders
