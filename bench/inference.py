"""Generator inference on every engine we ship to, side by side: batch 1 / 64 / 4096.

Per batch size (interleaved, so load changes hit every backend alike):

* ``eager``: ``G(**latent)`` under ``torch.inference_mode``.
* ``compiled``: ``torch.compile(G, dynamic=False)`` compiled afresh for each batch size (the
  best case for a server with bucketed shapes); the compile time is reported per row.
* ``compiled-ro`` (CUDA): the same with ``mode="reduce-overhead"`` (CUDA graphs); the row
  says whether Inductor really captured graphs (BatchNorm buffers can prevent it).
* ``aoti``: the AOTInductor package (:mod:`gan_accel.export.aoti`), compiled once with a
  dynamic batch axis, loaded with ``aoti_load_package``, torch tensors in and out.
* ``ort-cpu`` / ``ort-cpu-fp16`` / ``ort-cpu-int8``: ONNX Runtime's CPU EP on the fp32,
  fp16 and int8 (QDQ, quality-gated: :mod:`gan_accel.export.quantize`) exports, through
  :class:`OnnxGenerator` with numpy in and out (what a user of the exported model calls).
* ``ort-cuda`` (+ ``ort-cuda-fp16``), ``ort-cuda-graph``, ``ort-trt``: the CUDA EP with IO
  binding, the CUDA EP replaying a CUDA graph captured for that batch size, and the
  TensorRT EP, where this onnxruntime build has them and a GPU is there.

Every row carries the engine's recorded choices (``engine``: providers and their options,
optimisation level, threads, ...). ``--checkpoint RUN`` benchmarks a trained generator (the
int8 quality gate needs real digits to mean anything); without it the weights are random.

Limits, where the device's peak is known (CUDA): the memory-bandwidth bound (a call must
read every weight once, read its input and write its images: ``min_bytes / peak``) and the
launch bound (kernels launched per call x the measured cost of one launch).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from .common import Context, Result, add_speedups, compile_cache_note, timed_once

DEFAULT_BATCHES = [1, 64, 4096]
QUICK_BATCHES = [1, 8]
CPU_BACKENDS = ["eager", "compiled", "aoti", "ort-cpu", "ort-cpu-fp16", "ort-cpu-int8"]
CUDA_ONLY = ["compiled-ro", "ort-cuda", "ort-cuda-fp16", "ort-cuda-graph", "ort-trt"]
ALL_BACKENDS = CPU_BACKENDS + CUDA_ONLY
QUICK_BACKENDS = ["eager", "compiled", "ort-cpu"]  # a smoke run: no int8 gate, no AOT compile
TORCH_BACKENDS = {"eager", "compiled", "compiled-ro", "aoti"}
BULK_BACKENDS = ("ort-cpu", "ort-cpu-int8")  # --bulk-images: the fp32 and int8 CPU engines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("inference suite")
    g.add_argument("--model", default="dcgan",
                   help="variant whose generator is benchmarked (default: dcgan)")
    g.add_argument("--checkpoint", default=None, metavar="RUN_DIR",
                   help="benchmark this trained generator (default: random weights of "
                        "--model; the int8 quality gate only means something on a trained G)")
    g.add_argument("--batches", default=None, metavar="B,B,...",
                   help="batch sizes (default: 1,64,4096; --quick: 1,8)")
    g.add_argument("--bulk-images", type=int, default=0, metavar="N",
                   help="also sample N images to .npz shards (export.bulk, a temp folder) "
                        "with the fp32 and int8 ONNX Runtime CPU engines at the largest batch, "
                        "right after each one's timing row, and report bulk images/s against "
                        "it (default: 0, off; the issue's check: 1000000)")
    g.add_argument("--rounds", type=int, default=2, metavar="R",
                   help="timing rounds per batch, backends interleaved (order reversed every "
                        "other round), samples pooled (default: 2)")
    g.add_argument("--inference-backends", default=None, metavar="NAME,...",
                   help=f"subset of {','.join(ALL_BACKENDS)} (default: all that apply to the "
                        f"device; --quick: {','.join(QUICK_BACKENDS)})")


def parse_int_list(text: str, flag: str) -> list[int]:
    from gan_accel.errors import UserError

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r} must be comma-separated integers, e.g. 1,8,64") \
            from None
    if not values or min(values) < 1:
        raise UserError(f"{flag} {text!r} needs positive integers, e.g. 1,8,64")
    return values


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return ort.get_available_providers()


def default_backends(device: torch.device, quick: bool = False) -> list[str]:
    """The backends that apply to ``device`` (and to this onnxruntime build)."""
    if quick:
        return list(QUICK_BACKENDS)
    names = list(CPU_BACKENDS)
    if device.type == "cuda":
        names.insert(2, "compiled-ro")
        providers = _ort_providers()
        if "CUDAExecutionProvider" in providers:
            names += ["ort-cuda", "ort-cuda-fp16", "ort-cuda-graph"]
        if "TensorrtExecutionProvider" in providers:
            names.append("ort-trt")
    return names


def build_generator(model: str, device: torch.device, checkpoint: str | None = None):
    """(variant, G in eval mode on ``device``): ``checkpoint``'s trained G (its EMA G when it
    kept one), else the named variant with random weights."""
    if checkpoint:
        from gan_accel.checkpoints import load_trained

        variant, _ = load_trained(checkpoint, "last", None, "cpu")
    else:
        from gan_accel.variants import build_variant, recipe_config

        torch.manual_seed(0)
        variant = build_variant(recipe_config(model, device=str(device)))
    variant = variant.to(device).eval()
    return variant, variant.G


def min_bytes(G: torch.nn.Module, latent: dict[str, torch.Tensor], out_numel: int) -> int:
    """Bytes a call must move at least: weights + buffers once, the inputs, the fp32 images."""
    state = sum(t.numel() * t.element_size() for t in list(G.parameters()) + list(G.buffers()))
    inputs = sum(t.numel() * t.element_size() for t in latent.values())
    return state + inputs + out_numel * 4


# -- exported artifacts --------------------------------------------------------------------
class Artifact:
    """An exported model on one engine: ``call(latent) -> images``, its recorded choices, the
    seconds it took to make; or the exception that prevented it."""

    def __init__(self, call=None, engine: dict | None = None, prep_s: float = 0.0,
                 kind: str = "export_s", error: Exception | None = None, extra=None,
                 gen=None):
        self.call, self.engine, self.prep_s, self.kind = call, engine or {}, prep_s, kind
        self.error, self.extra, self.gen = error, extra or {}, gen


def _onnx_call(gen):
    """``call(numpy latent) -> images``: what a user of the exported model calls."""
    def call(inputs):
        return gen.run(inputs["z"], label=inputs.get("label"), codes=inputs.get("codes"))
    return call


def _prepare(variant, names: list[str], folder: Path, ctx: Context, log) -> dict:
    """Export each needed artifact once (fp32/fp16/int8 ONNX, .pt2) and open its engine."""
    from gan_accel.export.onnx_export import export_generator
    from gan_accel.export.runtime import CPU, CUDA, TENSORRT, OnnxGenerator

    out: dict[str, Artifact] = {}
    files: dict[str, tuple[Path, float, dict]] = {}

    def onnx_file(kind: str):
        if kind not in files:
            path = folder / f"g-{kind}.onnx"
            if kind == "int8":
                from gan_accel.export.quantize import quantize_generator

                report = quantize_generator(variant, path, threads=ctx.threads)
                extra = {"gate": report["gate"], "float_ops": report["float_ops"],
                         "int8_ops": report["int8_ops"]}
                log(f"inference: int8 export passed its gate: agreement "
                    f"{report['gate']['agreement']:.2%}, FID change "
                    f"{report['gate']['fid_change']:+.2%}")
            else:
                report = export_generator(variant, path, fp16=kind == "fp16", validate=False)
                extra = {"exporter": report["exporter"]}
            files[kind] = (path, float(report["seconds"]), extra)
        return files[kind]

    specs = {"ort-cpu": ("fp32", [CPU], {}), "ort-cpu-fp16": ("fp16", [CPU], {}),
             "ort-cpu-int8": ("int8", [CPU], {}), "ort-cuda": ("fp32", [CUDA, CPU], {}),
             "ort-cuda-fp16": ("fp16", [CUDA, CPU], {}),
             "ort-trt": ("fp32", [TENSORRT, CUDA, CPU], {})}
    for name in names:
        try:
            if name == "aoti":
                out[name] = _prepare_aoti(variant, folder, ctx)
            elif name in specs:
                kind, providers, kw = specs[name]
                path, seconds, extra = onnx_file(kind)
                gen = OnnxGenerator(path, providers=providers, threads=ctx.threads, **kw)
                if gen.providers[0] != providers[0]:
                    raise RuntimeError(f"{providers[0]} did not start (running on "
                                       f"{gen.providers})")
                out[name] = Artifact(_onnx_call(gen), gen.engine, seconds, extra=extra, gen=gen)
            elif name == "ort-cuda-graph":
                path, seconds, extra = onnx_file("fp32")
                out[name] = Artifact(None, {"model": str(path)}, seconds, extra=extra)
        except Exception as exc:  # noqa: BLE001 - reported in the rows
            out[name] = Artifact(error=exc)
            log(f"inference: {name} unavailable: {type(exc).__name__}: {exc}")
    return out


def _prepare_aoti(variant, folder: Path, ctx: Context) -> Artifact:
    from gan_accel.export.aoti import Pt2Generator, export_pt2

    device = str(ctx.device)
    report = export_pt2(variant, folder / "g.pt2", device=device, validate=False)
    gen = Pt2Generator(folder / "g.pt2")

    def call(latent):
        return gen.run_tensors(**latent)

    return Artifact(call, gen.engine, float(report["compile_seconds"]), kind="compile_s")


def _cuda_graph_call(path: Path, batch: int, threads: int):
    from gan_accel.export.runtime import CPU, CUDA, OnnxGenerator

    gen = OnnxGenerator(path, providers=[CUDA, CPU], threads=threads, cuda_graph_batch=batch)
    return _onnx_call(gen), gen.engine


# -- the suite -----------------------------------------------------------------------------
def _backends(args, ctx: Context) -> list[str]:
    from gan_accel.errors import UserError

    backends = default_backends(ctx.device, ctx.quick)
    if args.inference_backends:
        wanted = [b.strip() for b in args.inference_backends.split(",") if b.strip()]
        unknown = set(wanted) - set(ALL_BACKENDS)
        if unknown:
            raise UserError(f"--inference-backends: unknown {sorted(unknown)}; choose from "
                            f"{', '.join(ALL_BACKENDS)}")
        applicable = default_backends(ctx.device)
        backends = [b for b in wanted if b in applicable or b == "eager"]
    if "eager" not in backends:
        backends.insert(0, "eager")  # the speedup baseline
    return backends


def run(args: argparse.Namespace, ctx: Context) -> Result:
    device, log = ctx.device, ctx.log
    batches = parse_int_list(args.batches, "--batches") if args.batches else (
        QUICK_BATCHES if ctx.quick else DEFAULT_BATCHES)
    backends = _backends(args, ctx)
    variant, G = build_generator(args.model, device, args.checkpoint)
    peak = _peak(device)
    launch_us = _launch_overhead_us(device)
    config = {"model": variant.name, "batches": batches, "backends": backends,
              "weights": args.checkpoint or "random (no --checkpoint)",
              "threads": ctx.threads, "device": str(device), "dtype": "float32",
              "compile": "torch.compile(G, dynamic=False) per batch size",
              "generator_params": sum(p.numel() for p in G.parameters()),
              "launch_overhead_us": launch_us}
    notes = [
        "latency = one generator call for the whole batch; images/s = batch / p50",
        "speedup = eager p50 / backend p50, measured in the same run",
        "compile_s = torch.compile + first call for that batch size (aoti: one AOTInductor "
        "compile, dynamic batch); export_s = making the ONNX file once (int8: export + "
        "calibration + quality gate); both excluded from the timings",
        "min_bytes = weights + buffers + inputs + fp32 images (the least a call must move); "
        "bw_fraction = achieved_gbps / device peak (N/A on CPU or an unknown GPU); "
        "launch_bound_ms = kernels per call x launch_overhead_us (CUDA)",
        "ort rows run the exported graph (BatchNorm folded into the convs, layers "
        "rewritten): same images, not the same op sequence as eager; max_abs_diff vs eager "
        "is ~1e-7 for fp32, ~1e-3 for fp16 and ~0.1 (max) for int8",
    ]
    with tempfile.TemporaryDirectory(prefix="gan-accel-bench-") as tmp:
        artifacts = _prepare(variant, [b for b in backends if b not in TORCH_BACKENDS - {"aoti"}],
                             Path(tmp), ctx, log)
        variant.to(device)
        G = variant.G.eval()
        rows = []
        dead: set[str] = set()  # backends that ran out of memory at a smaller batch
        for b in batches:
            latent = variant.latent.sample(b, device, torch.Generator(device).manual_seed(b))
            with torch.inference_mode():
                reference = G(**latent)
            nbytes = min_bytes(G, latent, reference.numel())
            batch_rows, calls = {}, {}
            for name in backends:  # compile / warm up / check every backend first
                row = {"model": variant.name, "backend": name, "batch": b, "min_bytes": nbytes}
                batch_rows[name] = row
                if name in dead:
                    row.update(status="skipped: out of memory at a smaller batch")
                    continue
                try:
                    calls[name] = _prepare_call(name, G, latent, reference, artifacts.get(name),
                                                ctx, launch_us, row)
                except torch.OutOfMemoryError:
                    dead.add(name)
                    row.update(status="oom")
                    torch.cuda.empty_cache()
                except Exception as exc:  # noqa: BLE001 - one backend failing is a row
                    row.update(status=f"error: {type(exc).__name__}: {exc}"[:300])
            _time_interleaved(calls, batch_rows, ctx, args.rounds)
            for name in backends:
                row = batch_rows[name]
                _finish_row(row, nbytes, peak)
                rows.append(row)
                log(_line(row))
                if (args.bulk_images and b == max(batches) and name in BULK_BACKENDS
                        and row.get("status") == "ok"):
                    bulk_row = _bulk_row(name, artifacts[name], b, args.bulk_images, row,
                                         Path(tmp))
                    # the engine again, right after: load drifts over a long bulk run
                    after = {}
                    _time_interleaved({name: calls[name]}, {name: after}, ctx, 1)
                    _judge_bulk(bulk_row, row, b / (after["p50_ms"] / 1e3))
                    rows.append(bulk_row)
                    log(_line(rows[-1]))
    int8 = artifacts.get("ort-cpu-int8")
    if int8 is not None and int8.error is None:
        config["int8"] = int8.extra
    add_speedups(rows, ("model", "batch"), "backend", "eager")
    for r in rows:
        for k in ("p20_ms", "p50_ms", "p80_ms", "samples", "speedup"):
            r.setdefault(k, None)
    config["ratios"] = ratios(rows)
    notes += [f"measured: {line}" for line in describe_ratios(config["ratios"])]
    if device.type != "cuda":
        notes.append("bandwidth and launch bounds: N/A on CPU (no reliable peak DRAM figure)")
    notes.append(compile_cache_note())
    return Result("inference", config, rows, notes)


def _bulk_row(name: str, artifact: Artifact, batch: int, n: int, engine_row: dict,
              folder: Path) -> dict:
    """``n`` images to .npz shards with the engine just timed (same session, same batch):
    the bulk sampler's throughput against the engine's, measured back to back."""
    import shutil

    from gan_accel.export import bulk

    out = folder / f"bulk-{name}"
    plan = bulk.BulkPlan(n=n, seed=0, batch=batch)
    ident = bulk.identity(plan, "bench", name)
    summary = bulk.write_shards(artifact.gen, out, plan, bulk.prepare_out_dir(out, plan, ident),
                                ident, progress=False)
    shards = len(list(out.glob("shard-*.npz")))
    shutil.rmtree(out)
    return {"model": engine_row["model"], "backend": f"bulk:{name}", "batch": batch,
            "images": n, "shards": shards, "shard_size": plan.shard_size,
            "images_per_s": summary["images_per_s"], "seconds": summary["seconds"],
            "engine_share": summary["engine_share"], "peak_rss_mb": summary["peak_rss_mb"],
            "engine": artifact.engine, "status": "ok"}


def _judge_bulk(bulk_row: dict, before: dict, after_ips: float) -> None:
    """Bulk images/s against the engine timed just before and just after the bulk run (their
    mean: the machine's load drifts over the minute a million images take)."""
    reference = (before["images_per_s"] + after_ips) / 2
    bulk_row.update(engine_before_images_per_s=before["images_per_s"],
                    engine_after_images_per_s=round(after_ips, 1),
                    vs_engine_row=round(bulk_row["images_per_s"] / reference, 3))


def _peak(device: torch.device) -> float | None:
    from .common import peak_bandwidth_gbps

    return peak_bandwidth_gbps(device)


def _launch_overhead_us(device: torch.device) -> float | None:
    """Median host cost of launching one tiny CUDA kernel (None on CPU)."""
    if device.type != "cuda":
        return None
    import time

    x = torch.zeros(1, device=device)
    for _ in range(100):
        x.add_(1)
    torch.cuda.synchronize(device)
    samples = []
    for _ in range(20):
        t0 = time.perf_counter()
        for _ in range(100):
            x.add_(1)
        torch.cuda.synchronize(device)
        samples.append((time.perf_counter() - t0) / 100 * 1e6)
    return round(float(np.median(samples)), 3)


def _count_kernels(call, device: torch.device) -> int | None:
    """CUDA kernels one call launches (torch backends, via the profiler)."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize(device)
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def _prepare_call(name: str, G, latent, reference, artifact: Artifact | None, ctx: Context,
                  launch_us: float | None, row: dict):
    """Compile / open / warm up backend ``name`` for this batch and check its images; fills
    ``row`` (compile or export seconds, engine, max_abs_diff, kernels) and returns
    ``(call, host)``: the zero-argument call to time and whether it synchronises itself."""
    device = ctx.device
    host = name.startswith("ort-")
    if name == "eager":
        def call():
            with torch.inference_mode():
                return G(**latent)
        timed_once(call, device)
        row["engine"] = {"engine": "eager", "device": str(device)}
    elif name in ("compiled", "compiled-ro"):
        torch._dynamo.reset()  # fresh caches: no recompile limit, compile time per batch
        mode = "reduce-overhead" if name == "compiled-ro" else "default"
        compiled = torch.compile(G, mode=mode, dynamic=False)

        def call():
            with torch.inference_mode():
                return compiled(**latent)
        row["compile_s"] = round(timed_once(call, device), 3)
        for _ in range(2):
            timed_once(call, device)
        row["engine"] = {"engine": "torch.compile", "mode": mode, "dynamic": False}
        if name == "compiled-ro":
            row["engine"]["cudagraphs"] = _cudagraph_state()
    else:
        if artifact is None or artifact.error is not None:
            err = artifact.error if artifact is not None else "not prepared"
            raise RuntimeError(f"unavailable: {type(err).__name__}: {err}")
        fn = artifact.call
        engine = artifact.engine
        if name == "ort-cuda-graph":
            fn, engine = _cuda_graph_call(Path(artifact.engine["model"]), latent["z"].shape[0],
                                          ctx.threads)
        inputs = latent  # torch tensors (aoti); ONNX Runtime gets numpy, converted once
        if host:
            inputs = {k: v.detach().cpu().numpy() for k, v in latent.items()}

        def call():
            return fn(inputs)
        row[artifact.kind] = round(artifact.prep_s, 3)
        row["engine"] = engine
        timed_once(call, device)
        timed_once(call, device)
    out = call()
    out = torch.as_tensor(np.asarray(out.cpu() if torch.is_tensor(out) else out))
    row["max_abs_diff"] = float((out.float() - reference.float().cpu()).abs().max())
    if name in TORCH_BACKENDS and launch_us is not None:
        row["kernels"] = _count_kernels(call, device)
        row["launch_bound_ms"] = round(row["kernels"] * launch_us / 1e3, 4)
    return call, host


def _time_interleaved(calls: dict, rows: dict, ctx: Context, rounds: int) -> None:
    """Time every prepared backend in ``rounds`` rounds (order reversed every other round),
    each round a ``1/rounds`` share of the budget; per backend the samples of all rounds are
    pooled into p20/p50/p80, so load that drifts during the batch hits every backend alike."""
    from .common import TimingBudget, quantile

    share = TimingBudget(min_run_time=ctx.budget.min_run_time / rounds,
                         min_samples=-(-ctx.budget.min_samples // rounds),
                         warmup_ms=ctx.budget.warmup_ms, rep_ms=ctx.budget.rep_ms)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    timers: dict[str, str] = {}
    names = list(calls)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            call, host = calls[name]
            try:
                times, timers[name] = _time_samples(call, ctx, share, host)
            except Exception as exc:  # noqa: BLE001 - one backend failing is a row
                rows[name].update(status=f"error: {type(exc).__name__}: {exc}"[:300])
                calls = {k: v for k, v in calls.items() if k != name}
                continue
            samples[name] += times
    for name in calls:
        ms = samples[name]
        if rows[name].get("status", "").startswith("error"):
            continue
        rows[name].update(p20_ms=quantile(ms, 0.2), p50_ms=quantile(ms, 0.5),
                          p80_ms=quantile(ms, 0.8), samples=len(ms),
                          timer=f"{timers[name]}, {rounds} interleaved rounds", status="ok")


def _time_samples(call, ctx: Context, budget, host: bool) -> tuple[list[float], str]:
    """Raw per-call milliseconds of one timing block set (see :func:`common.time_fn`)."""
    from .common import time_fn

    if ctx.device.type == "cuda" and not host:  # do_bench reports quantiles, not samples
        t = time_fn(call, ctx.device, ctx.threads, budget)
        return [t.p20_ms, t.p50_ms, t.p80_ms], t.method
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="fn()", globals={"fn": call}, num_threads=ctx.threads)
    m = timer.blocked_autorange(min_run_time=budget.min_run_time)
    times = list(m.times)
    while len(times) < budget.min_samples:
        times += timer.timeit(m.number_per_run).times
    return ([t * 1e3 for t in times],
            f"torch.utils.benchmark blocked_autorange ({m.number_per_run}/block)")


def _cudagraph_state() -> str:
    """Whether reduce-overhead really ran CUDA graphs (Inductor's counters say)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return "unknown"
    skips = {k: v for k, v in counters.get("inductor", {}).items() if "cudagraph_skips" in k}
    return f"skipped ({skips})" if any(skips.values()) else "captured"


def _finish_row(row: dict, nbytes: int, peak: float | None) -> None:
    p50 = row.get("p50_ms")
    if not p50:
        row.update(images_per_s=None, achieved_gbps=None, bw_bound_ms=None, bw_fraction=None)
        return
    row["images_per_s"] = round(row["batch"] / (p50 / 1e3), 1)
    gbps = nbytes / (p50 / 1e3) / 1e9
    row["achieved_gbps"] = round(gbps, 4)
    row["bw_bound_ms"] = round(nbytes / (peak * 1e9) * 1e3, 6) if peak else None
    row["bw_fraction"] = round(gbps / peak, 5) if peak else None


def ratios(rows: list[dict]) -> dict:
    """The ratios the targets are stated in, per batch: best engine / eager, aoti /
    compiled, int8 / fp32 ONNX Runtime (from this run's rows)."""
    out: dict = {}
    for b in sorted({r["batch"] for r in rows}):
        ips = {r["backend"]: r["images_per_s"] for r in rows
               if r["batch"] == b and r.get("images_per_s")}
        if "eager" not in ips:
            continue
        best = max((k for k in ips if k != "eager" and not k.startswith("bulk:")),
                   key=ips.get, default=None)
        entry = {"best": best, "best_vs_eager": round(ips[best] / ips["eager"], 3)
                 if best else None}
        for key, (num, den) in {"aoti_vs_compiled": ("aoti", "compiled"),
                                "int8_vs_fp32_ort": ("ort-cpu-int8", "ort-cpu")}.items():
            entry[key] = round(ips[num] / ips[den], 3) if num in ips and den in ips else None
        bulk = {r["backend"]: r.get("vs_engine_row") for r in rows
                if r["batch"] == b and r["backend"].startswith("bulk:")}
        entry["bulk_int8_vs_engine"] = bulk.get("bulk:ort-cpu-int8")
        entry["bulk_fp32_vs_engine"] = bulk.get("bulk:ort-cpu")
        out[str(b)] = entry
    return out


def describe_ratios(r: dict) -> list[str]:
    lines = []
    for b, e in r.items():
        parts = [f"best {e['best']} {e['best_vs_eager']}x eager"] if e["best"] else []
        if e["aoti_vs_compiled"] is not None:
            parts.append(f"aoti {e['aoti_vs_compiled']}x compiled")
        if e["int8_vs_fp32_ort"] is not None:
            parts.append(f"ort int8 {e['int8_vs_fp32_ort']}x ort fp32")
        for key, what in (("bulk_int8_vs_engine", "int8"), ("bulk_fp32_vs_engine", "fp32")):
            if e.get(key) is not None:
                parts.append(f"bulk sampling {e[key]}x the ort {what} engine (mean of its "
                             "timings before and after the bulk run)")
        lines.append(f"batch {b}: " + ", ".join(parts))
    return lines


def _line(row: dict) -> str:
    if row["backend"].startswith("bulk:") and row.get("images_per_s"):
        return (f"  {row['backend']:<15} batch {row['batch']:>5}: {row['images']:,} images to "
                f"{row['shards']} shards in {row['seconds']:.1f} s, "
                f"{row['images_per_s']:,.0f} img/s = {row['vs_engine_row']:.0%} of the engine "
                f"(timed before {row['engine_before_images_per_s']:,.0f}, after "
                f"{row['engine_after_images_per_s']:,.0f} img/s); {row['engine_share']:.0%} of "
                f"its wall time inside the engine; peak RSS {row['peak_rss_mb']:.0f} MB")
    if row.get("p50_ms") is None:
        return f"  {row['backend']:<15} batch {row['batch']:>5}: {row.get('status')}"
    extra = ""
    for key, what in (("compile_s", "compile"), ("export_s", "export")):
        if key in row:
            extra = f"  ({what} {row[key]:.1f} s)"
    return (f"  {row['backend']:<15} batch {row['batch']:>5}: p50 {row['p50_ms']:.3f} ms "
            f"[{row['p20_ms']:.3f}, {row['p80_ms']:.3f}]  {row['images_per_s']:,.0f} img/s"
            + extra)
