"""The prepared GPU check (bench/gpu_check.py): its arguments, its plan, and the step runner
(own timeouts, failures that do not stop the rest, results written as it goes), on CPU with
stand-in steps; the smoke step itself through the Triton interpreter."""

from __future__ import annotations

import json
import sys
import tarfile
import time
from pathlib import Path

import pytest
from gan_accel.bench import gpu_check
from gan_accel.bench.gpu_check import Step

from gan_accel.errors import run_cli

REPO = Path(__file__).resolve().parents[2]


def _py(code: str):
    return lambda args, out: [sys.executable, "-c", code]


def test_dry_run_plans_every_step_in_order_within_the_budget(capsys, tmp_path):
    assert gpu_check.main(["--out", str(tmp_path / "o"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [ln.split()[0].split("-", 1)[1] for ln in lines[:-1]]
    assert names == ["env", "smoke", "pytest", "kernels", "train", "inference"]
    text = "\n".join(lines)
    assert "tests/kernels" in text and "--junitxml" in text
    kernels = next(ln for ln in lines if ln.startswith("04-kernels"))
    assert "kernels --device cuda" in kernels and kernels.endswith("--no-sweep")
    assert "--progress" in kernels and "kernels-rows.jsonl" in kernels
    assert "train --device cuda" in text and "--models dcgan" in text
    assert "inference --device cuda" in text
    assert not (tmp_path / "o").exists(), "a dry run writes nothing"
    total = sum(s.timeout_s for s in gpu_check.default_steps())
    assert total <= gpu_check.DEFAULT_BUDGET_S <= 360, total


def test_steps_skip_timeouts_and_pass_through_arguments(capsys, tmp_path):
    argv = ["--out", str(tmp_path), "--dry-run", "--steps", "train,pytest,kernels",
            "--skip", "kernels", "--timeout", "pytest=42", "--train-args",
            "--models dcgan,sngan --modes eager"]
    assert gpu_check.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[:-1]] == ["01-pytest", "02-train"], lines
    assert "timeout    42 s" in lines[0]
    assert lines[1].endswith("--models dcgan,sngan --modes eager")


@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "env,nope"], "--steps: unknown step 'nope'"),
    (["--skip", "gpu"], "--skip: unknown step 'gpu'"),
    (["--timeout", "pytest"], "expected STEP=SECONDS"),
    (["--timeout", "pytest=-3"], "expected STEP=SECONDS"),
    (["--timeout", "nope=3"], "--timeout: unknown step 'nope'"),
    (["--budget", "0"], "--budget must be > 0"),
    (["--steps", "env", "--skip", "env"], "no step left to run"),
])
def test_bad_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    assert run_cli(gpu_check.main, ["--out", str(tmp_path), "--dry-run", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_missing_out_is_a_usage_error(capsys):
    assert run_cli(gpu_check.main, ["--dry-run"]) == 2
    assert "--out" in capsys.readouterr().err


def test_refuses_to_run_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert run_cli(gpu_check.main, ["--out", str(tmp_path / "o")]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_runner_keeps_going_after_failures_and_timeouts(tmp_path, capsys):
    """Each step gets its own timeout; a failing or hanging step costs only itself, the
    summary and the bundle are rewritten after every step."""
    steps = [
        Step("first", "prints", 30, _py("print('hello from first')")),
        Step("broken", "exits 3", 30, _py("import sys; print('bad'); sys.exit(3)")),
        Step("hangs", "sleeps past its timeout", 1.5,
             _py("import time; print('going to sleep', flush=True); time.sleep(60)")),
        Step("last", "still runs", 30, _py("print('wrote /x/a.json, /x/a.md')")),
    ]
    out, bundle = tmp_path / "check", tmp_path / "carry" / "check.tar.gz"
    t0 = time.perf_counter()
    code = gpu_check.main(["--out", str(out), "--bundle", str(bundle)], steps=steps,
                          require_cuda=False)
    assert time.perf_counter() - t0 < 30, "the hanging step was not cut at its timeout"
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    got = [(r["step"], r["status"], r["exit_code"] if r["status"] != "timeout" else "-")
           for r in summary["steps"]]
    assert got == [("first", "ok", 0), ("broken", "failed", 3), ("hangs", "timeout", "-"),
                   ("last", "ok", 0)]
    hang = summary["steps"][2]
    assert hang["seconds"] < 10 and hang["timeout_s"] == 1.5
    assert "hello from first" in (out / "01-first.log").read_text()
    assert "going to sleep" in (out / "03-hangs.log").read_text()
    assert summary["steps"][3]["detail"] == "a.json"
    assert "| broken | failed |" in (out / "summary.md").read_text()
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
    assert {"check/summary.json", "check/01-first.log", "check/04-last.log"} <= names
    printed = capsys.readouterr().out
    assert "bad" in printed, "a failed step's log tail is printed"


def test_budget_cuts_timeouts_and_skips_what_does_not_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "MIN_STEP_S", 0.5)
    steps = [Step("slow", "uses the whole budget", 60, _py("import time; time.sleep(60)")),
             Step("after", "no time left", 60, _py("print(1)"))]
    code = gpu_check.main(["--out", str(tmp_path), "--budget", "2"], steps=steps,
                          require_cuda=False)
    rows = json.loads((tmp_path / "summary.json").read_text())["steps"]
    assert code == 1
    assert rows[0]["status"] == "timeout" and rows[0]["timeout_s"] <= 2
    assert rows[1]["status"] == "skipped" and "time budget" in rows[1]["detail"]


def test_steps_run_compiled_and_unforced(tmp_path, monkeypatch):
    """The steps never inherit the interpreter or a forced tile configuration."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("GAN_ACCEL_TILES", "tiny")
    code = ("import os; print(os.environ.get('TRITON_INTERPRET'), "
            "os.environ.get('GAN_ACCEL_TILES'))")
    steps = [Step("env", "prints", 30, _py(code))]
    assert gpu_check.main(["--out", str(tmp_path)], steps=steps, require_cuda=False) == 0
    assert "None None" in (tmp_path / "01-env.log").read_text()


def test_bench_main_dispatches_gpu(capsys, tmp_path):
    from gan_accel.bench.__main__ import main

    assert main(["gpu", "--out", str(tmp_path), "--dry-run", "--steps", "env"]) == 0
    assert "gan_accel.bench.gpu_check env" in capsys.readouterr().out


def test_env_and_smoke_steps_on_cpu(tmp_path, capsys):
    """The env step records the environment and fails without CUDA; the smoke step's checks
    pass on the interpreter (--quick: tiny shapes, both ops, an expanded batch)."""
    import torch
    from gan_accel.kernels import grad_penalty
    from triton.runtime.interpreter import InterpretedFunction

    code = gpu_check.env_step(tmp_path)
    doc = json.loads((tmp_path / "env.json").read_text())
    assert doc["torch"] and doc["triton"] and len(doc["sources_sha256"]) == 64
    assert code == (0 if torch.cuda.is_available() else 1)
    if not isinstance(grad_penalty._gp_fwd_kernel, InterpretedFunction):
        pytest.skip("the smoke step runs on CPU only through the Triton interpreter")
    assert gpu_check.smoke_step(tmp_path, "cpu", quick=True) == 0
    smoke = json.loads((tmp_path / "smoke.json").read_text())
    assert {r["op"] for r in smoke["rows"]} == {"spectral_norm", "gp_norm"}
    assert all(r["ok"] for r in smoke["rows"]) and "4/4 ok" in capsys.readouterr().out
