"""Crash safety, exact resume after SIGKILL, corrupt checkpoints and the divergence guard."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, tiny_mnist

from gan_accel import checkpoints
from gan_accel.checkpoints import (
    MODEL,
    list_checkpoints,
    load_checkpoint,
    load_latest_good,
    read_meta,
    save_checkpoint,
    sha256_file,
    under_prefix,
)
from gan_accel.config import TrainConfig
from gan_accel.errors import CheckpointError, DiskFullError, UserError
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config


def quiet(*_):
    pass


# ---------------------------------------------------------------------------------------------
# SIGKILL inside a checkpoint write, then --resume
# ---------------------------------------------------------------------------------------------
# 80 images of 20: 4 steps per epoch, 12 in all; checkpoints at 3, 6, 9, 12 (mid-epoch but the
# last), and ckpt-12 written again at the end of the run (its epoch counters moved on)
KILL_ARGS = ["--dataset", "mnist", "--batch-size", "20", "--epochs", "3",
             "--checkpoint-every", "3", "--keep-last", "2", "--ema", "0.9", "--no-progress",
             "--log-every", "1"]
KILL_POINTS = {  # kill right after this rename -> (checkpoint resumed from, first step run)
    "ckpt-00000006*.safetensors#1": ("ckpt-00000003.json", 3),  # tensors renamed, no JSON
    "ckpt-00000009.json#1": ("ckpt-00000009.json", 9),  # the JSON renamed, nothing after it
    "ckpt-00000012*.safetensors#2": ("ckpt-00000012.json", None),  # rewriting ckpt-12
}


def run_killable(kill, data, out, *extra):
    """Run the train CLI under kill_worker.py; (process, the first step it ran or None)."""
    first = Path(f"{out}.first-step-{len(list(Path(out).parent.glob('*.first-step-*')))}")
    cmd = [sys.executable, str(REPO / "tests" / "training" / "kill_worker.py"), kill,
           str(first), *KILL_ARGS, "--data-dir", str(data), "--out", str(out), *extra]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    return proc, (int(first.read_text()) if first.exists() else None)


@pytest.fixture(scope="module")
def kill_runs(tmp_path_factory):
    """``get(kill)``: the run killed at ``kill`` and resumed (each made once), beside one
    uninterrupted run of the same command."""
    root = tmp_path_factory.mktemp("kill")
    tiny_mnist(root / "data", n=80, seed=2)
    proc, _ = run_killable("none", root / "data", root / "full")
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = {}

    def get(kill):
        if kill not in done:
            run = root / re.sub(r"\W", "_", kill)
            killed, _ = run_killable(kill, root / "data", run)
            assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
            latest = load_latest_good(run)[0].name
            resumed, first = run_killable("none", root / "data", run, "--resume", str(run))
            assert resumed.returncode == 0, resumed.stderr[-2000:]
            done[kill] = {"run": run, "latest": latest, "first": first,
                          "full": load_checkpoint(list_checkpoints(root / "full")[-1]),
                          "resumed": load_checkpoint(list_checkpoints(run)[-1])}
        return done[kill]

    return get


@pytest.mark.parametrize("kill", list(KILL_POINTS))
@pytest.mark.slow
def test_sigkill_inside_a_checkpoint_write_then_resume_is_bit_identical(kill_runs, kill):
    """SIGKILL right after a rename inside a checkpoint write: the newest complete checkpoint
    loads (a rewritten one in its previous version), --resume runs on from the step after it,
    and the run ends with weights, EMA, optimizers and RNG bit-identical; no file of the
    killed write is left."""
    got, (resumed_from, first_step) = kill_runs(kill), KILL_POINTS[kill]
    assert got["latest"] == resumed_from
    assert got["first"] == first_step  # None: the run had finished its steps, none ran again
    (_, full), (_, resumed) = got["full"], got["resumed"]
    trained = [k for k in full if k.startswith(("model.", "ema.", "optim.", "rng."))]
    assert {k for k in resumed if k in trained} == set(trained)
    for k in trained:
        assert torch.equal(full[k], resumed[k]), k
    folder = got["run"] / "checkpoints"
    named = {read_meta(p)["tensors"] for p in list_checkpoints(got["run"])}
    assert {p.name for p in folder.glob("*.safetensors")} == named
    assert not list(folder.glob(".*.tmp"))


@pytest.mark.parametrize("kill", [
    *[k for k in KILL_POINTS if KILL_POINTS[k][1] is not None],
    "ckpt-00000012*.safetensors#2",
])
@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_same_checkpoint(kill_runs, kill):
    """The resumed run's last checkpoint equals the uninterrupted run's in full: every
    tensor, the position, the schedulers and epoch counters."""
    got = kill_runs(kill)
    (meta_full, full), (meta_resumed, resumed) = got["full"], got["resumed"]
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    assert meta_resumed["position"] == meta_full["position"]
    assert meta_resumed["state"] == meta_full["state"]


# ---------------------------------------------------------------------------------------------
# the write itself: order of operations, and faults injected into it
# ---------------------------------------------------------------------------------------------
def _meta(step):
    return {"config": recipe_config("dcgan").to_dict(), "position": {"step": step},
            "state": {}}


def _weights(value):
    return {"model.w": torch.full((3, 4), float(value)), "model.b": torch.arange(5.0) * value}


def test_checkpoint_write_order(tmp_path, monkeypatch):
    """Tensors to a temporary file, fsync, rename, fsync the folder; then the JSON (naming the
    renamed file by name and SHA-256) the same way; then the previous tensor file goes."""
    folder = tmp_path / "checkpoints"
    first = save_checkpoint(folder, "ckpt-00000001", _weights(1), _meta(1))
    old_tensors = read_meta(first)["tensors"]
    events = []

    def name(path):
        n = Path(path).name
        return re.sub(r"\.[^.]+\.tmp$", ".TMP", n) if n.endswith(".tmp") else n

    real_save, real_write, real_fsync, real_replace, real_unlink = (
        checkpoints.save_file, os.write, os.fsync, os.replace, Path.unlink)

    def save_file(tensors, path):
        events.append(("write", name(path)))
        real_save(tensors, path)

    def write(fd, data):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if Path(path).parent == folder and events[-1:] != [("write", name(path))]:
            events.append(("write", name(path)))
        return real_write(fd, data)

    def fsync(fd):
        events.append(("fsync", name(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def replace(src, dst):
        if str(dst).endswith(".json"):  # the JSON names a published file, with its checksum
            meta = json.loads(Path(src).read_text())
            assert sha256_file(folder / meta["tensors"]) == meta["sha256"]
        events.append(("rename", name(src), name(dst)))
        real_replace(src, dst)

    def unlink(self, missing_ok=False):
        events.append(("unlink", name(self)))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(checkpoints, "save_file", save_file)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    save_checkpoint(folder, "ckpt-00000001", _weights(2), _meta(1))  # rewrite, new content
    monkeypatch.undo()
    new_tensors = read_meta(first)["tensors"]
    assert new_tensors != old_tensors
    st_tmp, js_tmp = ".ckpt-00000001.safetensors.TMP", ".ckpt-00000001.json.TMP"
    assert events == [
        ("write", st_tmp), ("fsync", st_tmp), ("rename", st_tmp, new_tensors),
        ("fsync", "checkpoints"),
        ("write", js_tmp), ("fsync", js_tmp), ("rename", js_tmp, "ckpt-00000001.json"),
        ("fsync", "checkpoints"),
        ("unlink", old_tensors),
    ]
    assert sorted(p.name for p in folder.iterdir()) == [new_tensors, "ckpt-00000001.json"]


FAULTS = {  # (os function, which call of it raises)
    "fsync of the tensor file": ("fsync", 1),
    "rename of the tensor file": ("replace", 1),
    "fsync of the folder after the tensor rename": ("fsync", 2),
    "fsync of the JSON": ("fsync", 3),
    "rename of the JSON": ("replace", 2),
}


def test_a_refused_write_that_is_not_a_full_disk_is_a_checkpoint_error(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    save_checkpoint(folder, "ckpt-00000001", _weights(1), _meta(1))
    before = sorted(p.name for p in folder.iterdir())

    def read_only(*args):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(CheckpointError, match="Read-only file system") as info:
        save_checkpoint(folder, "ckpt-00000002", _weights(2), _meta(2))
    monkeypatch.undo()
    assert len(str(info.value).splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize("rewrite", [False, True], ids=["new checkpoint", "rewrite"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, fault, rewrite):
    """The disk refuses one step of the write (ENOSPC): one-line DiskFullError naming the
    checkpoint, the previous checkpoint loads unchanged, nothing new is left behind."""
    folder = tmp_path / "checkpoints"
    save_checkpoint(folder, "ckpt-00000001", _weights(1), _meta(1))
    before = sorted(p.name for p in folder.iterdir())
    func, nth = FAULTS[fault]
    real, calls = getattr(os, func), []

    def failing(*args):
        calls.append(args)
        if len(calls) == nth:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(os, func, failing)
    name = "ckpt-00000001" if rewrite else "ckpt-00000002"
    with pytest.raises(DiskFullError) as info:
        save_checkpoint(folder, name, _weights(2), _meta(2))
    monkeypatch.undo()
    msg = str(info.value)
    assert len(msg.splitlines()) == 1, msg
    assert msg.startswith(f"no space left on device: writing {folder / name}.json needs "), msg
    assert f"the previous checkpoint {folder}/ckpt-00000001.json is intact" in msg, msg
    assert sorted(p.name for p in folder.iterdir()) == before
    path, meta, tensors = load_latest_good(tmp_path)
    assert path.name == "ckpt-00000001.json" and meta["position"]["step"] == 1
    for k, v in _weights(1).items():
        assert torch.equal(tensors[k], v), k


def tiny_trainer(tmp_path, name="run", **kw):
    data = tmp_path / "data"
    if not data.is_dir():
        tiny_mnist(data, n=120, seed=4)
    cfg = recipe_config("dcgan", dataset="mnist", data_dir=str(data), batch_size=20,
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
    (run / "checkpoints" / "ckpt-00000099.0123456789abcdef.safetensors").write_bytes(b"part")
    path, meta, _ = load_latest_good(run)
    assert path.name == "ckpt-00000012.json" and meta["position"]["step"] == 12
    # flip bytes in the newest tensor file: the checksum catches it
    st = run / "checkpoints" / meta["tensors"]
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


def test_keep_last_prunes_old_checkpoints_and_leftovers(tmp_path):
    t = tiny_trainer(tmp_path, epochs=2, checkpoint_every=2, keep_last=2, ema=0.0)
    folder = t.run_dir / "checkpoints"
    folder.mkdir(parents=True)
    leftover = folder / "ckpt-00000011.0123456789abcdef.safetensors"  # a killed write's
    leftover.write_bytes(b"part")
    t.fit()
    kept = list_checkpoints(t.run_dir)
    assert [p.name for p in kept] == ["ckpt-00000010.json", "ckpt-00000012.json"]
    assert sorted(p.name for p in folder.glob("*.safetensors")) == sorted(
        read_meta(p)["tensors"] for p in kept)


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


def test_divergence_rollback_reloads_the_last_good_checkpoint_and_reruns(tmp_path):
    """--on-nan rollback: the weights become exactly the last good checkpoint's, training
    runs again from its step (the failed step included), every optimizer's lr is halved."""
    t = tiny_trainer(tmp_path, epochs=3, checkpoint_every=4, on_nan="rollback",
                     plateau_factor=1.0, ema=0.0)
    lrs = {k: [g["lr"] for g in o.param_groups] for k, o in t.optims.items()}
    _poison(t, at_step=9)  # seen at the checkpoint of step 12, the last good one is step 8
    loaded, steps = [], []
    real_load, real_step = t.load, t.train_step

    def load(path):
        real_load(path)
        on_disk = under_prefix(MODEL, load_checkpoint(path)[1])
        loaded.append((Path(path).name, on_disk,
                       {k: v.clone() for k, v in t.variant.state_dict().items()}))

    def train_step(*args):
        steps.append(t.pos.step)
        return real_step(*args)

    t.load, t.train_step = load, train_step
    t.fit()
    assert [name for name, _, _ in loaded] == ["ckpt-00000008.json"]
    _, on_disk, weights = loaded[0]
    assert weights.keys() == on_disk.keys()
    for k, v in on_disk.items():
        assert torch.equal(weights[k], v), k
    assert steps == list(range(12)) + list(range(8, 18))  # step 9 (0-based) ran twice
    assert t.pos.step == 18 and t.pos.rollbacks == 1
    assert {k: [g["lr"] for g in o.param_groups] for k, o in t.optims.items()} == {
        k: [lr * 0.5 for lr in v] for k, v in lrs.items()}
    assert all(torch.isfinite(v).all() for v in t.variant.state_dict().values()
               if v.is_floating_point())


def test_nan_weights_never_written(tmp_path):
    t = tiny_trainer(tmp_path, epochs=1)
    t.fit()
    before = [p.name for p in list_checkpoints(t.run_dir)]
    with torch.no_grad():
        next(t.variant.G.parameters()).fill_(float("nan"))
    with pytest.raises(UserError, match="non-finite"):
        t.save()
    assert [p.name for p in list_checkpoints(t.run_dir)] == before


# ---------------------------------------------------------------------------------------------
# loading never runs code from a file
# ---------------------------------------------------------------------------------------------
PICKLING_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve"}


def _dotted(node) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _is_const(node, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_loads(source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` that can unpickle: an import of a pickling module (pickle,
    dill, joblib, ...), ``torch.load`` without ``weights_only=True``, ``numpy.load`` with
    ``allow_pickle`` not False, ``pandas.read_pickle``; import aliases followed."""
    tree = ast.parse(source, filename)
    alias: dict[str, str] = {}  # local name -> full dotted name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[(a.asname or a.name).split(".")[0]] = (a.name if a.asname
                                                             else a.name.split(".")[0])
                if a.name.split(".")[0] in PICKLING_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
            if node.module.split(".")[0] in PICKLING_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        full = alias.get(head, head) + (f".{rest}" if rest else "")
        kwargs = {k.arg: k.value for k in node.keywords}
        where = f"{filename}:{node.lineno}: {full}(...)"
        if full.split(".")[0] in PICKLING_MODULES:
            found.append(where)
        elif full in ("torch.load", "torch.serialization.load"):
            if not _is_const(kwargs.get("weights_only"), True):
                found.append(where + " without weights_only=True")
        elif full in ("numpy.load", "np.load"):
            if "allow_pickle" in kwargs and not _is_const(kwargs["allow_pickle"], False):
                found.append(where + " with allow_pickle")
        elif full in ("pandas.read_pickle", "torch.package.PackageImporter"):
            found.append(where)
    return found


UNSAFE_SNIPPETS = [
    "import pickle",
    "import pickle as p",
    "from pickle import load",
    "from _pickle import loads as l",
    "import dill",
    "import joblib",
    "from joblib import load",
    "import torch\nstate = torch.load(path)",
    "import torch\nstate = torch.load(\n    path,\n    map_location='cpu',\n)",
    "import torch\nstate = torch.load(path, weights_only=False)",
    "import torch as th\nstate = th.load(path)",
    "from torch import load\nstate = load(path)",
    "from torch import load as tl\nstate = tl(path)",
    "import numpy as np\nx = np.load(path, allow_pickle=True)",
    "import numpy\nx = numpy.load(\n    path,\n    allow_pickle=flag)",
    "from numpy import load\nx = load(path, allow_pickle=True)",
    "import pandas as pd\ndf = pd.read_pickle(path)",
]
SAFE_SNIPPETS = [
    "import torch\nstate = torch.load(path, weights_only=True)",
    "import torch\nstate = torch.load(\n    path,\n    weights_only=True,\n)",
    "import numpy as np\nx = np.load(path)",
    "import numpy as np\nx = np.load(path, allow_pickle=False)",
    "import json\nx = json.load(f)",
    "from safetensors.torch import load_file\nx = load_file(path)",
    "# torch.load(path) in a comment\ns = 'pickle.load'",
]


@pytest.mark.parametrize("source", UNSAFE_SNIPPETS)
def test_unsafe_load_checker_finds(source):
    assert unsafe_loads(source), source


@pytest.mark.parametrize("source", SAFE_SNIPPETS)
def test_unsafe_load_checker_passes(source):
    assert not unsafe_loads(source), source


def test_no_pickle_loading_anywhere():
    """Loading never executes code from a file: the AST of every module of the package
    (gan_accel/, kernels/, export/, bench/) holds no import of a pickling module, no
    torch.load without weights_only=True, no numpy.load with allow_pickle."""
    offenders, modules = [], 0
    for pkg in ("gan_accel", "export", "bench", "kernels"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            modules += 1
            offenders += unsafe_loads(path.read_text(), str(path.relative_to(REPO)))
    assert modules > 50
    assert not offenders, offenders
