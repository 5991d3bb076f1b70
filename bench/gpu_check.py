"""``python -m gan_accel.bench gpu --out DIR``: the prepared check for a fresh CUDA machine.

One command validates and measures what needs a GPU, in about six minutes, writing everything
to DIR as it goes (``bash scripts/gpu_check.sh DIR`` first installs this checkout in place,
offline, when ``gan_accel`` is not importable). Steps, in order, each its own process with its
own timeout, so that one failing or hanging step costs only its own time:

==========  ===============================================================================
env         nvidia-smi, versions, device properties, source fingerprint (``env.json``)
smoke       every kernel path once, compiled, against the PyTorch references (``smoke.json``)
pytest      ``pytest tests/kernels`` compiled on CUDA (``pytest-kernels.xml``)
kernels     ``python -m gan_accel.bench kernels --device cuda --no-sweep`` (``bench/``; its
            rows also in ``kernels-rows.jsonl`` as they are measured)
train       ``python -m gan_accel.bench train --device cuda ...`` (``bench/``)
inference   ``python -m gan_accel.bench inference --device cuda ...`` (``bench/``)
==========  ===============================================================================

Each step's output streams into ``DIR/NN-step.log``; ``summary.json`` / ``summary.md`` are
rewritten after every step; ``--bundle FILE`` also keeps a ``.tar.gz`` of DIR, refreshed
after every step (one file to carry away, even when the run is cut short). Nothing is
downloaded: the machine needs torch, triton, pytest (pytest-xdist for parallel workers) and
this checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BUDGET_S = 360  # the whole check, all steps together
MIN_STEP_S = 5  # a step that would get less than this is skipped, not started
DEFAULT_PYTEST_ARGS = "tests/kernels"
DEFAULT_KERNELS_ARGS = "--no-sweep"
DEFAULT_TRAIN_ARGS = "--models dcgan --train-batch 64"
DEFAULT_INFERENCE_ARGS = ("--model dcgan --batches 1,64,4096 "
                          "--inference-backends eager,compiled,compiled-ro")


@dataclass(frozen=True)
class Step:
    """One step of the check: a command run from the repository root with a timeout."""

    name: str
    help: str
    timeout_s: float
    command: Callable[[argparse.Namespace, Path], list[str]]


def _module(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _pytest_command(args: argparse.Namespace, out: Path) -> list[str]:
    cmd = _module("pytest", "-q", "-rfEs", "--durations=15",
                  f"--junitxml={out / 'pytest-kernels.xml'}", *shlex.split(args.pytest_args))
    if args.pytest_workers > 1 and importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", str(args.pytest_workers)]
    return cmd


def default_steps() -> list[Step]:
    """The check's steps, in order; their default timeouts add up to DEFAULT_BUDGET_S."""
    return [
        Step("env", "environment: nvidia-smi, versions, device properties", 15,
             lambda a, out: _module("gan_accel.bench.gpu_check", "env", str(out))),
        Step("smoke", "each kernel path once, compiled, vs the PyTorch references", 40,
             lambda a, out: _module("gan_accel.bench.gpu_check", "smoke", str(out))),
        Step("pytest", "pytest tests/kernels, compiled on CUDA", 110, _pytest_command),
        Step("kernels", "kernel bench on the seed shapes", 90,
             lambda a, out: _module("gan_accel.bench", "kernels", "--device", "cuda",
                                    "--out-dir", str(out / "bench"), "--progress",
                                    str(out / "kernels-rows.jsonl"),
                                    *shlex.split(a.kernels_args))),
        Step("train", "train-step bench", 75,
             lambda a, out: _module("gan_accel.bench", "train", "--device", "cuda",
                                    "--out-dir", str(out / "bench"),
                                    *shlex.split(a.train_args))),
        Step("inference", "inference bench", 30,
             lambda a, out: _module("gan_accel.bench", "inference", "--device", "cuda",
                                    "--out-dir", str(out / "bench"),
                                    *shlex.split(a.inference_args))),
    ]


# -- command line ------------------------------------------------------------------------------


def build_parser(steps: list[Step]):
    from gan_accel.errors import OneLineParser

    names = ", ".join(s.name for s in steps)
    parser = OneLineParser(
        prog="python -m gan_accel.bench gpu",
        description="The prepared GPU check: environment, kernel smoke check, kernel tests "
                    "compiled on CUDA, kernel / train / inference benches; every step in its "
                    "own process with its own timeout, results written to --out as they come.")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder for everything the check writes (created if missing)")
    parser.add_argument("--steps", default=None, metavar="NAME,...",
                        help=f"run only these steps, in the usual order (default: all: {names})")
    parser.add_argument("--skip", default="", metavar="NAME,...", help="leave these steps out")
    parser.add_argument("--timeout", action="append", default=[], metavar="STEP=SECONDS",
                        help="override one step's timeout (repeatable); defaults: "
                             + ", ".join(f"{s.name} {s.timeout_s:g} s" for s in steps))
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="SECONDS",
                        help=f"time for all steps together; a step's timeout is cut to what is "
                             f"left, and a step with under {MIN_STEP_S} s left is skipped "
                             f"(default: {DEFAULT_BUDGET_S})")
    parser.add_argument("--bundle", type=Path, default=None, metavar="FILE",
                        help="also keep FILE, a .tar.gz of --out, refreshed after every step")
    parser.add_argument("--pytest-workers", type=int, default=min(8, os.cpu_count() or 1),
                        metavar="N", help="pytest-xdist workers for the pytest step, when "
                                          "pytest-xdist is installed (default: min(8, cores))")
    parser.add_argument("--pytest-args", default=DEFAULT_PYTEST_ARGS, metavar="ARGS",
                        help=f"what the pytest step runs (default: {DEFAULT_PYTEST_ARGS!r}; "
                             "e.g. 'tests/kernels tests/training -m \"gpu or triton\"')")
    parser.add_argument("--kernels-args", default=DEFAULT_KERNELS_ARGS, metavar="ARGS",
                        help=f"extra arguments of the kernel bench (default: "
                             f"{DEFAULT_KERNELS_ARGS!r}; e.g. add --kernel-impls to trim it)")
    parser.add_argument("--train-args", default=DEFAULT_TRAIN_ARGS, metavar="ARGS",
                        help=f"extra arguments of the train bench (default: "
                             f"{DEFAULT_TRAIN_ARGS!r})")
    parser.add_argument("--inference-args", default=DEFAULT_INFERENCE_ARGS, metavar="ARGS",
                        help=f"extra arguments of the inference bench (default: "
                             f"{DEFAULT_INFERENCE_ARGS!r})")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (commands and timeouts) and run nothing")
    return parser


def _names(text: str, steps: list[Step], flag: str) -> list[str]:
    from gan_accel.errors import UserError

    known = [s.name for s in steps]
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise UserError(f"{flag}: unknown step {bad[0]!r}; choose from {', '.join(known)}")
    return names


def _timeouts(items: list[str], steps: list[Step]) -> dict[str, float]:
    from gan_accel.errors import UserError

    out = {s.name: float(s.timeout_s) for s in steps}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            seconds = float(value) if sep else -1.0
        except ValueError:
            seconds = -1.0
        if not sep or seconds <= 0:
            raise UserError(f"--timeout {item!r}: expected STEP=SECONDS with SECONDS > 0, e.g. "
                            "--timeout pytest=150")
        _names(name, steps, "--timeout")
        out[name.strip()] = seconds
    return out


def plan(args: argparse.Namespace, steps: list[Step]) -> list[tuple[Step, float]]:
    """The steps to run, in order, with their timeouts."""
    from gan_accel.errors import UserError

    if args.budget <= 0:
        raise UserError(f"--budget must be > 0 seconds, got {args.budget:g}")
    wanted = _names(args.steps, steps, "--steps") if args.steps is not None else None
    skipped = set(_names(args.skip, steps, "--skip"))
    timeouts = _timeouts(args.timeout, steps)
    chosen = [(s, timeouts[s.name]) for s in steps
              if (wanted is None or s.name in wanted) and s.name not in skipped]
    if not chosen:
        raise UserError("no step left to run: check --steps and --skip")
    return chosen


# -- running -----------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for var in ("TRITON_INTERPRET", "GAN_ACCEL_TILES"):  # the GPU runs compiled, as shipped
        env.pop(var, None)
    return env


def run_step(step: Step, command: list[str], timeout: float, log: Path) -> dict:
    """Run one step, streaming its output into ``log``; ends its process group on timeout."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        f.write(f"$ {shlex.join(command)}\n# timeout {timeout:g} s, started "
                f"{_dt.datetime.now().astimezone().isoformat(timespec='seconds')}\n")
        f.flush()
        proc = subprocess.Popen(command, cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                                env=_child_env(), start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the step's own process group only
            rc = proc.wait()
            status = "timeout"
        seconds = time.perf_counter() - t0
        f.write(f"\n# {status} (exit {rc}) after {seconds:.1f} s\n")
    return {"step": step.name, "status": status, "exit_code": rc, "seconds": round(seconds, 1),
            "timeout_s": timeout, "log": log.name, "command": shlex.join(command),
            "detail": _detail(step.name, log)}


def _detail(name: str, log: Path) -> str:
    """One line that says how the step went (pytest's tally, files written, ...)."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    if name == "pytest":
        tallies = [ln for ln in lines if (" passed" in ln or " failed" in ln) and " in " in ln]
        return tallies[-1].strip("= ") if tallies else ""
    wrote = [ln for ln in lines if ln.startswith("wrote ")]
    if wrote:
        return "; ".join(Path(p.split(",")[0].split()[-1]).name for p in wrote)
    body = [ln for ln in lines if not ln.startswith("#") and not ln.startswith("$")]
    return body[-1][:200] if body else ""


def _write_summary(out: Path, rows: list[dict], started: str, budget: float) -> None:
    doc = {"check": "gan-accel gpu check", "started": started, "budget_s": budget,
           "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "steps": rows}
    (out / "summary.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# GPU check ({started})", "",
             "| step | status | seconds | timeout s | log | detail |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | {r['status']} | {r['seconds']} | {r['timeout_s']:g} | "
                     f"{r['log'] or ''} | {str(r['detail']).replace('|', '/')} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def _write_bundle(out: Path, bundle: Path) -> None:
    bundle.parent.mkdir(parents=True, exist_ok=True)
    tmp = bundle.with_name(bundle.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            if path.is_file() and path.resolve() not in (bundle.resolve(), tmp.resolve()):
                tar.add(path, arcname=str(Path(out.name) / path.relative_to(out)))
    os.replace(tmp, bundle)


def _tail(log: Path, n: int = 12) -> str:
    return "\n".join("    " + ln for ln in log.read_text(errors="replace").splitlines()[-n:])


def main(argv: list[str] | None = None, steps: list[Step] | None = None,
         require_cuda: bool = True) -> int:
    """Run the check; exit code 0 when every step passed, 1 otherwise."""
    from gan_accel.errors import UserError

    steps = default_steps() if steps is None else steps
    args = build_parser(steps).parse_args(argv)
    chosen = plan(args, steps)
    out = args.out.resolve()
    if args.dry_run:
        for i, (step, timeout) in enumerate(chosen, 1):
            print(f"{i:02d}-{step.name:<10} timeout {timeout:>5g} s  "
                  f"{shlex.join(step.command(args, out))}")
        print(f"budget {args.budget:g} s; output in {out}")
        return 0
    if require_cuda:
        import torch

        if not torch.cuda.is_available():
            raise UserError("the GPU check needs a CUDA device (torch.cuda.is_available() is "
                            "False here); --dry-run shows what it would run")
    out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    deadline = time.perf_counter() + args.budget
    rows: list[dict] = []
    for i, (step, timeout) in enumerate(chosen, 1):
        left = deadline - time.perf_counter()
        log = out / f"{i:02d}-{step.name}.log"
        if left < MIN_STEP_S:
            rows.append({"step": step.name, "status": "skipped", "exit_code": None,
                         "seconds": 0.0, "timeout_s": timeout, "log": None, "command": None,
                         "detail": f"time budget spent ({left:.0f} s left of {args.budget:g})"})
        else:
            print(f"== {step.name}: {step.help} (timeout {min(timeout, left):.0f} s)",
                  flush=True)
            rows.append(run_step(step, step.command(args, out), min(timeout, left), log))
            r = rows[-1]
            print(f"== {step.name}: {r['status']} in {r['seconds']} s  {r['detail']}",
                  flush=True)
            if r["status"] != "ok":
                print(_tail(log), flush=True)
        _write_summary(out, rows, started, args.budget)
        if args.bundle is not None:
            _write_bundle(out, args.bundle)
    print((out / "summary.md").read_text(), flush=True)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


# -- the steps that run inside this module -----------------------------------------------------


def _run(cmd: list[str], timeout: float = 20) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return (proc.stdout + proc.stderr).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"


def _version(name: str) -> str | None:
    try:
        return getattr(__import__(name), "__version__", "unknown")
    except Exception:  # noqa: BLE001 - a missing package is recorded as None
        return None


def source_fingerprint() -> dict:
    """The commit if git knows one, and a sha256 over the sources the results depend on."""
    digest = hashlib.sha256()
    files = sorted(p for folder in ("kernels", "bench", "gan_accel", "export", "tests/kernels")
                   for p in (REPO / folder).rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    commit = _run(["git", "-C", str(REPO), "rev-parse", "HEAD"], timeout=10)
    return {"git_commit": commit if len(commit) == 40 else None,
            "sources_sha256": digest.hexdigest(), "source_files": len(files)}


def env_step(out: Path) -> int:
    """Write env.json (and nvidia-smi.txt); exit 1 without a CUDA device."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    env = {"timestamp": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "python": platform.python_version(), "platform": platform.platform(),
           "executable": sys.executable, "cpu_count": os.cpu_count(),
           "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
           "torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
           else None,
           **{name: _version(name) for name in ("triton", "onnxruntime", "onnx", "numpy",
                                                  "pytest", "xdist")},
           "env_vars": {k: os.environ.get(k) for k in ("TRITON_INTERPRET", "GAN_ACCEL_TILES",
                                                        "CUDA_VISIBLE_DEVICES",
                                                        "TRITON_CACHE_DIR")},
           "cuda_available": torch.cuda.is_available(), **source_fingerprint()}
    with contextlib.suppress(Exception):
        import onnxruntime

        env["onnxruntime_providers"] = onnxruntime.get_available_providers()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["device"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                         "multiprocessors": props.multi_processor_count,
                         "memory_gib": round(props.total_memory / 2**30, 1),
                         "l2_cache_mib": round(getattr(props, "L2_cache_size", 0) / 2**20, 1),
                         "count": torch.cuda.device_count()}
    smi = _run(["nvidia-smi"])
    query = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,"
                  "clocks.max.sm,clocks.mem,power.limit,temperature.gpu", "--format=csv"])
    env["nvidia_smi_query"] = query
    (out / "nvidia-smi.txt").write_text(smi + "\n\n" + query + "\n")
    (out / "env.json").write_text(json.dumps(env, indent=1, default=str) + "\n")
    print(json.dumps({k: env.get(k) for k in ("torch", "triton", "onnxruntime", "device",
                                               "git_commit", "sources_sha256")}, default=str))
    if not torch.cuda.is_available():
        print("no CUDA device: torch.cuda.is_available() is False", file=sys.stderr)
        return 1
    return 0


# (weight shape, dim): the seed D's four weights, a ConvTranspose layout, a large matrix on
# the multi-program path; penalty batches of 28x28: one program (64), several (4096), and
# an expanded batch (row stride 0)
SMOKE_SN = [((32, 1, 4, 4), 0), ((64, 32, 2, 2), 0), ((128, 64, 4, 4), 0), ((1, 128, 4, 4), 0),
            ((128, 64, 4, 4), 1), ((1024, 9216), 0)]
SMOKE_GP = [(64, 784, False), (4096, 784, False), (64, 784, True)]
QUICK_SMOKE_SN = [((7, 13), 0), ((3, 5, 2, 2), 1)]
QUICK_SMOKE_GP = [(5, 7, False), (4, 9, True)]


def _rel_err(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    if not bool(a.isfinite().all()):
        return float("inf")
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def smoke_step(out: Path, device_name: str = "cuda", quick: bool = False) -> int:
    """Each kernel path once against its reference (fp32, training forward + backward)."""
    import torch
    from gan_accel.kernels import (
        SpectralNorm,
        torch_gp_norm_penalty,
        torch_spectral_norm,
        triton_gp_norm_penalty,
        triton_spectral_norm,
    )

    device = torch.device(device_name)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    rows, tol = [], 1e-4
    for shape, dim in QUICK_SMOKE_SN if quick else SMOKE_SN:
        w = torch.randn(shape)
        sn = SpectralNorm(w, dim=dim, impl="torch")
        w, u, v = w.to(device), sn._u.to(device), sn._v.to(device)
        grad = torch.randn(shape, device=device)
        w_ref, w_tri = w.clone().requires_grad_(), w.clone().requires_grad_()
        u_ref, v_ref, u_tri, v_tri = u.clone(), v.clone(), u.clone(), v.clone()
        ref = torch_spectral_norm(w_ref, u_ref, v_ref, 1, 1e-12, dim, True)
        t0 = time.perf_counter()
        got = triton_spectral_norm(w_tri, u_tri, v_tri, 1, 1e-12, dim, True)
        got.backward(grad)
        if device.type == "cuda":
            torch.cuda.synchronize()
        first_s = time.perf_counter() - t0
        ref.backward(grad)
        errs = {"out": _rel_err(got, ref), "u": _rel_err(u_tri, u_ref),
                "v": _rel_err(v_tri, v_ref), "dW": _rel_err(w_tri.grad, w_ref.grad)}
        rows.append({"op": "spectral_norm", "shape": "x".join(map(str, shape)), "dim": dim,
                     "first_call_s": round(first_s, 3), "rel_err": errs,
                     "ok": all(e <= tol for e in errs.values())})
    for b, n, expanded in QUICK_SMOKE_GP if quick else SMOKE_GP:
        base = torch.randn(1 if expanded else b, n, device=device) / n**0.5
        x_ref, x_tri = base.clone().requires_grad_(), base.clone().requires_grad_()
        g_ref, g_tri = (x.expand(b, n) if expanded else x for x in (x_ref, x_tri))
        ref = torch_gp_norm_penalty(g_ref)
        t0 = time.perf_counter()
        got = triton_gp_norm_penalty(g_tri)
        got.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        first_s = time.perf_counter() - t0
        ref.backward()
        errs = {"penalty": _rel_err(got, ref), "dg": _rel_err(x_tri.grad, x_ref.grad)}
        rows.append({"op": "gp_norm", "shape": f"{b}x{n}" + (" expanded" if expanded else ""),
                     "first_call_s": round(first_s, 3), "rel_err": errs,
                     "ok": all(e <= tol for e in errs.values())})
    out.mkdir(parents=True, exist_ok=True)
    (out / "smoke.json").write_text(json.dumps({"device": str(device), "tolerance": tol,
                                                "rows": rows}, indent=1) + "\n")
    for r in rows:
        worst = max(r["rel_err"].values())
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['op']:<14} {r['shape']:<18} max rel err "
              f"{worst:.2e}  first call {r['first_call_s']:.2f} s")
    bad = sum(not r["ok"] for r in rows)
    print(f"smoke: {len(rows) - bad}/{len(rows)} ok")
    return 1 if bad else 0


def _internal(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_accel.bench.gpu_check",
                                     description="One step of the GPU check, run by it.")
    parser.add_argument("step", choices=("env", "smoke"), help="the step to run")
    parser.add_argument("out", type=Path, help="the check's output folder")
    parser.add_argument("--device", default="cuda", help="smoke: the device (default: cuda)")
    parser.add_argument("--quick", action="store_true", help="smoke: two tiny cases per op")
    args = parser.parse_args(argv)
    if args.step == "env":
        return env_step(args.out)
    return smoke_step(args.out, args.device, args.quick)


if __name__ == "__main__":
    sys.exit(_internal(sys.argv[1:]))
