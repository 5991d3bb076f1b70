"""A torch.profiler trace of a few compiled training steps, read by phase and by kernel.

The trainer labels each phase ``record_function(f"{phase}_step")`` (``D_step``, ``G_step``,
``info_step``, ...), so the Chrome trace (``*.trace.json``, open in chrome://tracing or
Perfetto) reads like the algorithm. Also written: the ``key_averages()`` table of the top
kernels/ops by self time (``.txt``) and a JSON of the per-phase and top-op rows.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from .common import Context, Result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("profile (--profile)")
    g.add_argument("--profile", action="store_true",
                   help="profile a few compiled training steps of --model: Chrome trace + "
                        "top-kernels table (alone: only the profile runs)")
    g.add_argument("--profile-steps", type=int, default=None, metavar="N",
                   help="steps recorded after warm-up (default: 5; --quick: 2)")
    g.add_argument("--profile-eager", action="store_true",
                   help="profile the eager step instead of the compiled one")


def run(args: argparse.Namespace, ctx: Context, out_stem: Path) -> tuple[Result, dict]:
    """Profile; writes ``<out_stem>.trace.json`` and ``<out_stem>.txt``; returns the rows."""
    from .train_step import make_trainer, net_options, step_batches, train_batches

    device = ctx.device
    steps = args.profile_steps or (2 if ctx.quick else 5)
    batch = train_batches(args, ctx.quick)[0]
    mode = "eager" if args.profile_eager else "compiled"
    torch._dynamo.reset()
    with tempfile.TemporaryDirectory(prefix="gan-accel-bench-prof-") as tmp, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = make_trainer(args.model, mode, batch, device, tmp, **net_options(args))
        batches, _ = step_batches(trainer, 4)
        for i in range(2):  # compile + warm-up, outside the trace
            trainer.train_step(*batches[i % len(batches)])
        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
            torch.cuda.synchronize(device)
        with profile(activities=activities, record_shapes=False) as prof:
            for i in range(steps):
                trainer.train_step(*batches[(i + 2) % len(batches)])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    trace = out_stem.with_name(out_stem.name + ".trace.json")
    prof.export_chrome_trace(str(trace))
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = prof.key_averages()
    table = averages.table(sort_by=sort, row_limit=30, max_name_column_width=70)
    phase_rows = _phase_rows(averages, trainer, device)
    txt = out_stem.with_name(out_stem.name + ".txt")
    header = (f"# torch.profiler: {args.model}, {mode} training step, batch {batch}, {steps} "
              f"steps, {device} ({ctx.threads} threads), sorted by {sort}\n")
    phase_txt = "\n".join(f"{r['name']:<14} calls {r['calls']:>4}  total {r['total_ms']:.3f} ms"
                          for r in phase_rows)
    txt.write_text(header + "\n## phases (record_function labels)\n" + phase_txt
                   + "\n\n## top ops / kernels by self time\n" + table + "\n")
    rows = phase_rows + _top_rows(averages, device, 25)
    config = {"model": args.model, "mode": mode, "batch": batch, "steps": steps,
              "device": str(device), "threads": ctx.threads, "sort_by": sort}
    notes = [f"Chrome trace: {trace.name} (gitignored); table: {txt.name}",
             "phase rows: total time inside each record_function(f'{phase}_step') label; "
             "op rows: self time per op/kernel summed over the recorded steps"]
    ctx.log(header + phase_txt + "\n" + table)
    return Result("profile", config, rows, notes), {"trace": trace, "txt": txt}


def _time_ms(evt, device: torch.device, self_time: bool) -> float:
    if device.type == "cuda":
        us = evt.self_device_time_total if self_time else evt.device_time_total
    else:
        us = evt.self_cpu_time_total if self_time else evt.cpu_time_total
    return round(us / 1e3, 4)


def _phase_rows(averages, trainer, device: torch.device) -> list[dict]:
    names = {f"{ph.name}_step" for ph in trainer.phases}
    rows = []
    for evt in averages:
        if evt.key in names:
            rows.append({"kind": "phase", "name": evt.key, "calls": evt.count,
                         "self_ms": _time_ms(evt, device, True),
                         "total_ms": round(evt.cpu_time_total / 1e3, 4)})
    return sorted(rows, key=lambda r: r["name"])


def _top_rows(averages, device: torch.device, n: int) -> list[dict]:
    events = [e for e in averages if not e.key.endswith("_step")]
    events.sort(key=lambda e: _time_ms(e, device, True), reverse=True)
    return [{"kind": "op", "name": e.key, "calls": e.count,
             "self_ms": _time_ms(e, device, True), "total_ms": _time_ms(e, device, False)}
            for e in events[:n]]
