"""Shared benchmark plumbing: timing, device facts, and the JSON / markdown / PNG writers.

Every suite returns a :class:`Result` (``suite``, ``config``, ``rows``, ``notes``); the
runner stamps it with :func:`environment` and :func:`write_result` saves
``<date>-<device>-<suite>.json`` plus the markdown table and plot drawn *from that JSON*
(:mod:`bench.report` redraws them from saved files the same way).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .document import SCHEMA, load_document
from .report import render_markdown, render_plot

REPO = Path(__file__).resolve().parents[1]

# Peak DRAM bandwidth (GB/s, vendor figures) by a substring of torch.cuda.get_device_name().
# Checked in order: put the more specific name first.
PEAK_GBPS: list[tuple[str, float]] = [
    ("GH200", 4000.0),  # 96 GB HBM3
    ("H200", 4800.0),
    ("H100 NVL", 3900.0),
    ("H100 PCIe", 2000.0),
    ("H100", 3350.0),  # SXM5 80 GB HBM3
    ("B200", 8000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),  # 40 GB
    ("L40S", 864.0),
    ("L40", 864.0),
    ("L4", 300.0),
    ("A10G", 600.0),
    ("RTX 4090", 1008.0),
    ("V100", 900.0),
    ("T4", 320.0),
]

# -- device and environment ----------------------------------------------------------------
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def device_slug(device: torch.device) -> str:
    """Short file-name tag: ``cpu-2c`` or e.g. ``nvidia-h100-80gb-hbm3``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"cpu-{os.cpu_count() or 1}c"


def peak_for_name(name: str) -> float | None:
    """Peak memory bandwidth (GB/s) of the GPU called ``name``, None if not in the table."""
    for sub, gbps in PEAK_GBPS:
        if sub.lower() in name.lower():
            return gbps
    return None


def peak_bandwidth_gbps(device: torch.device) -> float | None:
    """The device's peak memory bandwidth in GB/s from :data:`PEAK_GBPS`; None on CPU or if
    the GPU is not in the table."""
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device))


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - a missing optional package is simply "None"
        return None
    return getattr(mod, "__version__", "unknown")


def git_commit() -> str | None:
    """HEAD of the repository (read-only ``git``), ``+dirty`` when tracked files other than
    docs and results differ from it (the numbers then come from code no commit holds); None
    outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0 or not out.stdout.strip():
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                 ".", ":(exclude)*.md", ":(exclude)docs",
                                 ":(exclude)bench/results"],
                                cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = status.returncode == 0 and bool(status.stdout.strip())
    return out.stdout.strip() + ("+dirty" if dirty else "")


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment_timestamp() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def environment(device: torch.device, threads: int) -> dict:
    """Facts that make a number interpretable: device, cores, threads, versions, commit."""
    env = {
        "device": str(device),
        "device_type": device.type,
        "device_name": device_name(device),
        "device_slug": device_slug(device),
        "cpu_name": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "threads": threads,
        "peak_bandwidth_gbps": peak_bandwidth_gbps(device),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "onnxruntime": _version("onnxruntime"),
        "onnx": _version("onnx"),
        "cuda": torch.version.cuda,
        "git_commit": git_commit(),
        "timestamp": environment_timestamp(),
        "loadavg_start": loadavg(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
    return env


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- timing --------------------------------------------------------------------------------
@dataclass
class Timing:
    """Latency quantiles of one callable, in milliseconds, over ``samples`` measurements."""

    p20_ms: float
    p50_ms: float
    p80_ms: float
    samples: int | None  # None: do_bench does not report its count
    method: str

    def as_row(self) -> dict:
        return {"p20_ms": self.p20_ms, "p50_ms": self.p50_ms, "p80_ms": self.p80_ms,
                "samples": self.samples, "timer": self.method}


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile of ``values`` (q in [0, 1])."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class TimingBudget:
    """How long to measure: ``min_run_time`` s of CPU blocks (at least ``min_samples``),
    ``warmup_ms`` / ``rep_ms`` for ``triton.testing.do_bench`` on CUDA."""

    min_run_time: float = 1.0
    min_samples: int = 7
    warmup_ms: int = 25
    rep_ms: int = 200

    @classmethod
    def quick(cls) -> TimingBudget:
        return cls(min_run_time=0.05, min_samples=3, warmup_ms=5, rep_ms=20)


def time_fn(fn: Callable[[], object], device: torch.device, threads: int,
            budget: TimingBudget, host: bool = False) -> Timing:
    """Time ``fn()`` (already warmed up) and return p20/p50/p80 in ms.

    CUDA: ``triton.testing.do_bench`` (CUDA events, L2 flushed between calls). CPU, or
    ``host=True`` (work that synchronises on its own, e.g. ONNX Runtime with numpy in/out):
    ``torch.utils.benchmark.Timer.blocked_autorange`` with ``threads`` threads; each sample
    is the mean of one block of ``number_per_run`` calls, topped up to ``min_samples``
    blocks.
    """
    if device.type == "cuda" and not host:
        import triton.testing

        p20, p50, p80 = triton.testing.do_bench(fn, warmup=budget.warmup_ms, rep=budget.rep_ms,
                                                quantiles=[0.2, 0.5, 0.8])
        return Timing(p20, p50, p80, samples=None, method="triton.testing.do_bench")
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=budget.min_run_time)
    times = list(m.times)
    while len(times) < budget.min_samples:
        times += timer.timeit(m.number_per_run).times
    ms = [t * 1e3 for t in times]
    return Timing(quantile(ms, 0.2), quantile(ms, 0.5), quantile(ms, 0.8), samples=len(ms),
                  method=f"torch.utils.benchmark blocked_autorange ({m.number_per_run}/block)")


def timed_once(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one synchronised call (warm-up / compile / export time)."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


# -- results -------------------------------------------------------------------------------
@dataclass
class Result:
    """What a suite returns: rows (one dict each) plus the config and notes that explain them."""

    suite: str
    config: dict
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tag: str = ""  # appended to the file name, e.g. the dataset of a quality run


def add_speedups(rows: list[dict], group_keys: tuple[str, ...], name_key: str,
                 baseline: str) -> None:
    """Set ``row["speedup"]`` = baseline p50 / row p50 within each group (None if missing)."""
    base = {}
    for r in rows:
        if r.get(name_key) == baseline and r.get("p50_ms"):
            base[tuple(r.get(k) for k in group_keys)] = r["p50_ms"]
    for r in rows:
        b = base.get(tuple(r.get(k) for k in group_keys))
        r["speedup"] = round(b / r["p50_ms"], 3) if b and r.get("p50_ms") else None


def result_stem(env: dict, suite: str, quick: bool) -> str:
    """``<date>-<device>-<suite>[-quick]``; on CPU ``-<N>t`` follows the device when the run
    used fewer threads than there are cores (so 1- and 2-thread runs do not overwrite)."""
    date = env["timestamp"][:10]
    device = env["device_slug"]
    if env.get("device_type") == "cpu" and env.get("threads") != env.get("cpu_cores"):
        device += f"-{env['threads']}t"
    return f"{date}-{device}-{suite}" + ("-quick" if quick else "")


def to_document(result: Result, env: dict, quick: bool) -> dict:
    env = {**env, "loadavg_end": loadavg()}
    for row in result.rows:
        row.setdefault("suite", result.suite)
    return {"schema": SCHEMA, "suite": result.suite, "quick": quick, "env": env,
            "config": result.config, "notes": result.notes, "rows": result.rows}


def write_result(result: Result, env: dict, out_dir: Path, quick: bool,
                 log=print) -> dict[str, Path]:
    """Write ``<stem>.json`` and, from it, ``<stem>.md`` and ``<stem>.png``; returns paths."""

    out_dir.mkdir(parents=True, exist_ok=True)
    doc = to_document(result, env, quick)
    stem = result_stem(env, result.suite + (f"-{result.tag}" if result.tag else ""), quick)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    doc = load_document(paths["json"])  # the table and plot are drawn from the file
    paths["md"].write_text(render_markdown(doc))
    png = render_plot([doc], out_dir / f"{stem}.png")
    if png is not None:
        paths["png"] = png
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return paths


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@dataclass
class Context:
    """What every suite gets: where to run, how long to measure, and the flags shared by all."""

    device: torch.device
    threads: int
    budget: TimingBudget
    quick: bool = False
    allow_interpreter: bool = False
    log: Callable[..., None] = print


def compile_cache_note() -> str:
    """Whether Inductor's on-disk caches are on: they make a repeat compile far cheaper."""
    try:
        from torch._inductor import config as inductor_config

        on = bool(inductor_config.fx_graph_cache)
    except Exception:  # noqa: BLE001 - an older/newer torch without the flag
        return "compile_s: Inductor cache state unknown"
    if on:
        return ("compile_s: Inductor's on-disk FX-graph/AOT caches are on, so a shape compiled "
                "by an earlier run on this machine compiles much faster (cold compiles cost "
                "several times more)")
    return "compile_s: Inductor's FX graph cache is off: every compile is cold"


def say(*parts) -> None:
    print(*parts, flush=True)


def parse_names(text: str | None, known, default: list[str], flag: str) -> list[str]:
    """A comma-separated option (``--models dcgan,sngan``) as names, each one of ``known``;
    ``default`` when the option is empty. An unknown name is a one-line UserError."""
    from gan_accel.errors import UserError

    if not text:
        return default
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise UserError(f"{flag}: unknown {', '.join(unknown) or '(empty)'}; choose from "
                        f"{', '.join(known)}")
    return names
