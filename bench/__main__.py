"""``python -m gan_accel.bench [SUITE ...] [options]`` (also ``gan-accel bench``).

Examples::

    python -m gan_accel.bench --quick                  # every suite, small sizes, CPU smoke run
    python -m gan_accel.bench inference --model dcgan  # batch 1 .. 4096, eager/compiled/ORT
    python -m gan_accel.bench train --models dcgan     # one training step, eager vs compiled
    python -m gan_accel.bench kernels                  # fused kernels vs PyTorch (Triton: CUDA)
    python -m gan_accel.bench data                     # PNG folder decode, cached loader vs step
    python -m gan_accel.bench --profile                # trace of compiled training steps
    python -m gan_accel.bench report A.json [B.json]   # redraw / compare
    python -m gan_accel.bench quality [its options]    # sample quality (bench/quality.py)
    python -m gan_accel.bench gpu --out DIR            # the prepared GPU check (gpu_check.py)
    python -m gan_accel.bench serve --checkpoint RUN   # the HTTP sampler under load (serve.py)

Every run writes ``<date>-<device>-<suite>.json`` (``-quick`` appended for --quick runs), a
markdown table and a PNG plot under ``--out-dir`` (default ``bench/results/``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

SUITES = ("inference", "train", "kernels", "profile", "quality", "serve", "data")
ALL_SUITES = ("inference", "train", "kernels", "quality")  # what no SUITE argument runs


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    from gan_accel.errors import OneLineParser

    from . import data_loader, inference, kernels_bench, profile, serve, train_step

    parser = OneLineParser(
        prog="python -m gan_accel.bench",
        description="Benchmark gan-accel: eager vs compiled vs ONNX Runtime inference, training "
                    "steps, fused kernels, profiles. `python -m gan_accel.bench report FILE...` "
                    "redraws "
                    "or compares saved results; `python -m gan_accel.bench quality ...` runs the "
                    "sample-quality suite with its own options.")
    parser.add_argument("suites", nargs="*", metavar="SUITE",
                        help=f"suites to run: {', '.join(SUITES)} (default: "
                             f"{', '.join(ALL_SUITES)}; quality is left out of --quick runs)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats: a smoke run (CPU, tests)")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"torch and ONNX Runtime intra-op threads (default: all cores, "
                             f"{_cores()} here)")
    parser.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                        help="where results go (default: bench/results/)")
    parser.add_argument("--min-run-time", type=float, default=None, metavar="S",
                        help="CPU seconds of timed blocks per measurement (default: 1.0; "
                             "--quick: 0.05)")
    parser.add_argument("--allow-interpreter", action="store_true",
                        help="on CPU, run the Triton kernels under TRITON_INTERPRET=1 (smoke "
                             "run only: those timings are meaningless)")
    for module in (inference, train_step, kernels_bench, profile, serve, data_loader):
        module.add_arguments(parser)
    return parser


def _suites(args) -> list[str]:
    from gan_accel.errors import UserError

    bad = [s for s in args.suites if s not in SUITES]
    if bad:
        raise UserError(f"unknown suite {bad[0]!r}; choose from {', '.join(SUITES)} (or "
                        "`report FILE...`)")
    suites = list(dict.fromkeys(args.suites))
    if not suites:
        if args.profile:
            return ["profile"]
        suites = [s for s in ALL_SUITES if not (args.quick and s == "quality")]
        if args.quick:
            print("quality: left out of --quick runs (run `python -m gan_accel.bench quality` "
                  "for it)")
    if args.profile and "profile" not in suites:
        suites.append("profile")
    return suites


# the modules whose @triton.jit kernels read TRITON_INTERPRET when they are imported
TRITON_KERNEL_MODULES = ("gan_accel.kernels.fused_spectral_norm", "gan_accel.kernels.grad_penalty")


def _use_interpreter(args, device) -> None:
    """--allow-interpreter on CPU: TRITON_INTERPRET=1 must be set before triton kernels load."""
    if not args.allow_interpreter or device.type == "cuda":
        return
    loaded = [m for m in TRITON_KERNEL_MODULES if m in sys.modules]
    if os.environ.get("TRITON_INTERPRET") != "1" and loaded:
        print(f"warning: {loaded[0]} was imported before --allow-interpreter could set "
              "TRITON_INTERPRET=1; Triton rows may fail", file=sys.stderr)
    os.environ["TRITON_INTERPRET"] = "1"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark CLI; returns the exit code (1 if any suite failed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        from .report import main as report_main

        return report_main(argv[1:])
    if argv and argv[0] == "quality":
        return run_quality(argv[1:])
    if argv and argv[0] == "gpu":
        from .gpu_check import main as gpu_main

        return gpu_main(argv[1:])
    args = build_parser().parse_args(argv)
    import torch

    from gan_accel.devices import select_device

    from . import common
    from .document import DEFAULT_OUT

    suites = _suites(args)
    threads = args.threads or _cores()
    if threads < 1:
        from gan_accel.errors import UserError

        raise UserError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    device = select_device(args.device)
    _use_interpreter(args, device)
    budget = common.TimingBudget.quick() if args.quick else common.TimingBudget()
    if args.min_run_time:
        budget.min_run_time = args.min_run_time
    ctx = common.Context(device=device, threads=threads, budget=budget, quick=args.quick,
                         allow_interpreter=args.allow_interpreter, log=common.say)
    out_dir = args.out_dir or DEFAULT_OUT
    base_env = common.environment(device, threads)
    failed = []
    for suite in suites:
        env = {**base_env, "timestamp": common.environment_timestamp(),
               "loadavg_start": common.loadavg()}
        common.say(f"== {suite} on {env['device_name']} ({device}, {threads} threads), "
                   f"load average {env['loadavg_start']} ==")
        t0 = time.perf_counter()
        try:
            _run_suite(suite, args, ctx, env, out_dir)
            common.say(f"== {suite} done in {time.perf_counter() - t0:.1f} s ==")
        except Exception as exc:  # noqa: BLE001 - report, go on with the other suites
            from gan_accel.errors import UserError

            if isinstance(exc, UserError):
                raise
            traceback.print_exc()
            failed.append(suite)
    if failed:
        print(f"bench: suite(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _run_suite(suite: str, args, ctx, env: dict, out_dir: Path) -> None:
    from . import common

    if suite == "profile":
        from . import profile

        stem = out_dir / common.result_stem(env, "profile", args.quick)
        result, _files = profile.run(args, ctx, stem)
    elif suite == "quality":
        result, _ = _quality_result(_quality_module(), _quality_argv(args, ctx), ctx.log)
    else:
        from . import data_loader, inference, kernels_bench, serve, train_step

        module = {"inference": inference, "train": train_step, "kernels": kernels_bench,
                  "serve": serve, "data": data_loader}[suite]
        result = module.run(args, ctx)
    common.write_result(result, env, out_dir, args.quick)


# -- the quality suite (bench/quality.py) --------------------------------------------------
def _quality_module():
    from . import quality

    return quality


def _quality_argv(args, ctx) -> list[str]:
    """The shared flags the quality suite also understands (--device, --quick) for an
    all-suites run."""
    from gan_accel.errors import OneLineParser

    probe = OneLineParser(add_help=False)
    _quality_module().add_arguments(probe)
    known = probe._option_string_actions  # noqa: SLF001 - argparse has no public lookup
    argv = ["--device", str(ctx.device)] if "--device" in known else []
    if args.quick and "--quick" in known:
        argv.append("--quick")
    return argv


def _quality_result(quality, argv: list[str], log, before_run=None):
    """Parse ``argv`` with the quality suite's own options, run it, wrap its dict.

    ``before_run(namespace)`` is called between parsing and running. Returns
    ``(Result, namespace)``; a ``rows`` list in the dict becomes the rows, otherwise its
    scalar entries make one row.
    """
    from gan_accel.errors import OneLineParser

    from .common import Result

    parser = OneLineParser(prog="python -m gan_accel.bench quality",
                           description="Sample-quality benchmark (bench/quality.py).")
    quality.add_arguments(parser)
    args = parser.parse_args(argv)
    if before_run is not None:
        before_run(args)
    out = quality.run(args)
    if not isinstance(out, dict):
        raise TypeError(f"bench.quality.run returned {type(out).__name__}, expected a dict")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(out.get("config") or {})
    rows = out.get("rows")
    if not isinstance(rows, list):
        rows = [{k: v for k, v in out.items() if not isinstance(v, dict | list)}]
    notes = out.get("notes") if isinstance(out.get("notes"), list) else []
    return Result("quality", config, rows, notes, tag=quality.result_tag(args)), args


def run_quality(argv: list[str]) -> int:
    """``python -m gan_accel.bench quality ...``: the quality suite with its own options."""
    import torch

    from gan_accel.devices import select_device

    from . import common
    from .document import DEFAULT_OUT

    envs = []

    def environment(args) -> None:  # taken before the run: commit and load at its start
        device = select_device(str(getattr(args, "device", "auto") or "auto"))
        envs.append(common.environment(device, torch.get_num_threads()))

    result, args = _quality_result(_quality_module(), argv, common.say, environment)
    env = envs[0]
    out_dir = Path(getattr(args, "out_dir", None) or DEFAULT_OUT)
    common.write_result(result, env, out_dir, bool(getattr(args, "quick", False)))
    return 0 if all(r.get("status", "ok") == "ok" for r in result.rows) else 1


if __name__ == "__main__":
    from gan_accel.errors import run_cli

    sys.exit(run_cli(main))
