"""--compile is real: Dynamo builds a graph for every phase (none in eager), each with
fullgraph=True, so a graph break in a variant's loss is a one-line error, not a slow fallback."""

import pytest
import torch
from helpers import tiny_mnist
from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list
from torch._dynamo.utils import counters

from gan_accel.cli import train
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import VARIANTS, recipe_config
from gan_accel.variants.gan import GAN


def code_of(fn):
    """The code object Dynamo caches a phase's compiled graphs on."""
    return getattr(fn, "__func__", fn).__code__


def fit_tiny(tmp_path, name, compile, max_steps=2):
    data = tmp_path / "data"
    if not data.is_dir():
        tiny_mnist(data, n=16, seed=3)
    cfg = recipe_config("gan", dataset="mnist", data_dir=str(data), batch_size=8,
                             max_steps=max_steps, ema=0.0, progress=False, compile=compile,
                             out=str(tmp_path / name))
    t = Trainer(cfg, log=lambda *_: None)
    t.fit()
    return t


@pytest.mark.slow  # a compiled and an eager fit: 18 s with empty caches
def test_compiled_fit_builds_a_graph_per_phase_and_eager_none(tmp_path, monkeypatch):
    compile_calls = []
    real_compile = torch.compile

    def spy(fn, **kwargs):
        compile_calls.append(kwargs)
        return real_compile(fn, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    torch._dynamo.reset()
    counters.clear()
    eager = fit_tiny(tmp_path, "eager", compile=False)
    assert compile_calls == [] and counters["stats"]["unique_graphs"] == 0
    assert not any(_debug_get_cache_entry_list(code_of(ph.loss)) for ph in eager.phases)

    torch._dynamo.reset()
    counters.clear()
    t = fit_tiny(tmp_path, "compiled", compile=True)
    assert len(compile_calls) == len(t.phases) >= 2
    assert all(kw["fullgraph"] is True for kw in compile_calls)
    for ph in t.phases:
        assert len(_debug_get_cache_entry_list(code_of(ph.loss))) >= 1, ph.name
    assert counters["stats"]["unique_graphs"] >= len(t.phases)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert set(t.first_call_seconds) == {ph.name for ph in t.phases}


def test_each_phase_compiles_once_across_steps_and_epochs(tmp_path):
    """One graph per phase for the whole run: no recompile after the first step, at an
    epoch's end (sample grid, checkpoint) or in the next epoch. A recompile would cost a
    cold start its compile time again."""
    torch._dynamo.reset()
    counters.clear()
    t = fit_tiny(tmp_path, "compiled", compile=True, max_steps=5)  # 2 steps an epoch
    assert t.pos.epoch >= 2
    for ph in t.phases:
        assert len(_debug_get_cache_entry_list(code_of(ph.loss))) == 1, ph.name
    assert counters["stats"]["unique_graphs"] == len(t.phases), dict(counters["stats"])


class HostListGAN(GAN):
    """The gan variant reading its D loss into a Python list: fine eagerly, a graph break
    (Dynamo's Unsupported) compiled."""

    name = "gan-host-list"

    def d_loss(self, b):
        loss, logs = super().d_loss(b)
        logs["d_real_list"] = logs["d_real"].tolist()
        return loss, logs


class BranchGAN(GAN):
    """The gan variant branching on its D loss's value: fine eagerly; compiled, Dynamo cannot
    guard on the data-dependent condition (its UserError, not Unsupported)."""

    name = "gan-branch"

    def d_loss(self, b):
        loss, logs = super().d_loss(b)
        if float(loss) > 1e9:
            loss = loss * 0.5
        return loss, logs


@pytest.mark.parametrize("variant", [
    HostListGAN,
    BranchGAN,
])
def test_a_graph_break_under_compile_is_a_one_line_error(tmp_path, capsys, monkeypatch,
                                                         variant):
    monkeypatch.setitem(VARIANTS, variant.name, variant)
    tiny_mnist(tmp_path / "data", n=16, seed=3)
    argv = ["--model", variant.name, "--dataset", "mnist", "--data-dir",
            str(tmp_path / "data"), "--batch-size", "8", "--max-steps", "1", "--ema", "0",
            "--no-progress"]
    assert run_cli(train.main, [*argv, "--out", str(tmp_path / "eager")]) == 0  # eager: fine
    capsys.readouterr()
    torch._dynamo.reset()
    try:
        code = run_cli(train.main, [*argv, "--compile", "--out", str(tmp_path / "compiled")])
    except Exception as exc:  # noqa: BLE001 - what the user would see: a traceback
        pytest.fail(f"a traceback instead of one line: {type(exc).__name__}")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"--compile: the D phase of {variant.name} does not compile to one graph" in err
    assert "train without --compile" in err
    assert not list((tmp_path / "compiled").glob("checkpoints/*"))


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    yield
    torch._dynamo.reset()
