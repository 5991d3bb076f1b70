"""Test-wide setup: Triton's CPU interpreter, one process state for every test, the time budget.

TRITON_INTERPRET must be set before triton is first imported, hence here at the top.

Every test starts from the process state of the session's start: torch's thread count and
the environment variables below. A CLI called in-process sets the thread count for its
process (``--threads 1``); without this reset the tests after it ran at 1 thread, where a
tolerance stated at 2 threads need not hold (tests/kernels/test_kernels_training.py failed in
the full suite that way, never alone).

The budget: a test of the default command (``python -m pytest``) takes at most
:data:`BUDGET_S` seconds of wall time on a quiet 2-core machine, its share of a module's
shared fixtures included. A longer one carries ``@pytest.mark.slow``: the default command
skips it, ``.ci/run`` runs it (``-m "slow or not slow"``). Every run ends with the slowest
tests and any unmarked test over the budget.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

THREADS = min(2, os.cpu_count() or 1)
torch.set_num_threads(THREADS)

BUDGET_S = 5.0
SLOWEST_SHOWN = 15
_ENV = ("TRITON_INTERPRET", "GAN_ACCEL_TILES", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
        "TORCHINDUCTOR_CACHE_DIR")
_SESSION_ENV = {k: os.environ.get(k) for k in _ENV}


def _reset_process_state() -> None:
    torch.set_num_threads(THREADS)
    for key, value in _SESSION_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def pytest_sessionstart(session):
    """Inductor's CPU vector-ISA checks (C++ builds, ~15 s with an empty cache) start now, in
    the background, as the trainer starts them, instead of inside the first test that
    compiles."""
    if not torch.cuda.is_available():
        from gan_accel.training.inductor_warmup import start_cpu_isa_checks

        start_cpu_isa_checks()


@pytest.fixture(autouse=True)
def _same_process_state():
    """The session's thread count and environment before and after every test."""
    _reset_process_state()
    yield
    _reset_process_state()


# ---------------------------------------------------------------------------------------------
# the time budget
# ---------------------------------------------------------------------------------------------
_seconds: dict[str, float] = {}
_slow: set[str] = set()


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration
    if "slow" in report.keywords:
        _slow.add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    tr = terminalreporter
    ranked = sorted(_seconds.items(), key=lambda kv: -kv[1])
    tr.section(f"slowest {min(SLOWEST_SHOWN, len(ranked))} tests (budget {BUDGET_S:g} s a "
               "test; longer ones are marked slow)")
    for nodeid, seconds in ranked[:SLOWEST_SHOWN]:
        tr.write_line(f"{seconds:7.2f}s {'slow ' if nodeid in _slow else '     '}{nodeid}")
    over = [(n, s) for n, s in ranked if s > BUDGET_S and n not in _slow]
    if over:
        tr.write_line(f"over the {BUDGET_S:g} s budget without @pytest.mark.slow (on a busy "
                      "machine every test runs longer; check on a quiet one):")
        for nodeid, seconds in over:
            tr.write_line(f"{seconds:7.2f}s {nodeid}")
