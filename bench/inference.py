"""Generator inference: eager vs ``torch.compile`` vs ONNX Runtime, batch 1 .. 4096.

Per batch size (interleaved, so load changes hit every backend alike):

* ``eager``: ``G(**latent)`` under ``torch.inference_mode``.
* ``compiled``: ``torch.compile(G, dynamic=False)`` compiled afresh for each batch size (the
  best case for a server with bucketed shapes); the compile time is reported per row.
* ``compiled-ro`` (CUDA): the same with ``mode="reduce-overhead"`` (CUDA graphs).
* ``ort-cpu`` / ``ort-cuda``: the generator exported once with a dynamic batch axis, run by
  ONNX Runtime with numpy inputs and outputs (so ``ort-cuda`` includes the host<->device
  copies); the export time is reported apart.

Memory-bandwidth floor: a generator call must at least read every weight once, read its
input and write its images; ``min_bytes / peak bandwidth`` bounds the latency from below, and
``achieved_gbps / peak`` says how close a backend gets (CUDA with a known peak; N/A on CPU).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from .common import Context, Result, add_speedups, compile_cache_note, time_fn, timed_once

ALL_BATCHES = [2**i for i in range(13)]  # 1 .. 4096
QUICK_BATCHES = [1, 8]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("inference suite")
    g.add_argument("--model", default="dcgan",
                   help="variant whose generator is benchmarked (default: dcgan)")
    g.add_argument("--batches", default=None, metavar="B,B,...",
                   help="batch sizes (default: 1,2,4,...,4096; --quick: 1,8)")
    g.add_argument("--inference-backends", default=None, metavar="NAME,...",
                   help="subset of eager,compiled,compiled-ro,ort-cpu,ort-cuda "
                        "(default: all that apply to the device)")


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


def default_backends(device: torch.device) -> list[str]:
    names = ["eager", "compiled"]
    if device.type == "cuda":
        names.append("compiled-ro")
    names.append("ort-cpu")
    if device.type == "cuda" and "CUDAExecutionProvider" in _ort_providers():
        names.append("ort-cuda")
    return names


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return ort.get_available_providers()


def build_generator(model: str, device: torch.device):
    """(variant, G in eval mode on ``device``) for the named variant, random weights."""
    from gan_accel.config import TrainConfig
    from gan_accel.variants import build_variant

    torch.manual_seed(0)
    variant = build_variant(TrainConfig.preset(model, device=str(device)))
    variant = variant.to(device).eval()
    return variant, variant.G


def min_bytes(G: torch.nn.Module, latent: dict[str, torch.Tensor], out_numel: int) -> int:
    """Bytes a call must move at least: weights + buffers once, the inputs, the fp32 images."""
    state = sum(t.numel() * t.element_size() for t in list(G.parameters()) + list(G.buffers()))
    inputs = sum(t.numel() * t.element_size() for t in latent.values())
    return state + inputs + out_numel * 4


# -- ONNX Runtime --------------------------------------------------------------------------
class OrtBackend:
    """One ONNX Runtime session over the exported generator; ``run(inputs)`` -> images."""

    def __init__(self, path: Path, provider: str, threads: int, exporter: str, export_s: float):
        self.run = _open_session(path, [provider], threads)
        self.provider, self.exporter, self.export_s = provider, exporter, export_s


def _export(variant, path: Path, log) -> tuple[str, float]:
    """Export G with a dynamic batch axis; returns (exporter description, export seconds)."""
    from gan_accel.export.onnx_export import export_generator

    report = export_generator(variant, path, validate=False)  # BN folded, metadata
    desc = (f"gan_accel.export ({report['exporter']}, opset {report['opset']}, "
            f"{report['batchnorm_nodes']} BatchNorm nodes left)")
    return desc, float(report["export_seconds"])


def _open_session(path: Path, providers: list[str], threads: int):
    """A callable ``inputs -> images``: ``OnnxGenerator(...).run``, what a user of the exported
    model calls, input checks included."""
    from gan_accel.export.runtime import OnnxGenerator

    gen = OnnxGenerator(path, providers=providers, threads=threads)
    if gen.providers[0] != providers[0]:
        raise RuntimeError(f"{providers[0]} did not start (running on {gen.providers})")

    def call(inputs):
        return gen.run(inputs["z"], label=inputs.get("label"), codes=inputs.get("codes"))

    return call


# -- the suite -----------------------------------------------------------------------------
def run(args: argparse.Namespace, ctx: Context) -> Result:
    device, log = ctx.device, ctx.log
    batches = parse_int_list(args.batches, "--batches") if args.batches else (
        QUICK_BATCHES if ctx.quick else ALL_BATCHES)
    backends = default_backends(device)
    if args.inference_backends:
        wanted = [b.strip() for b in args.inference_backends.split(",") if b.strip()]
        unknown = set(wanted) - {"eager", "compiled", "compiled-ro", "ort-cpu", "ort-cuda"}
        if unknown:
            from gan_accel.errors import UserError

            raise UserError(f"--inference-backends: unknown {sorted(unknown)}; choose from "
                            "eager, compiled, compiled-ro, ort-cpu, ort-cuda")
        backends = [b for b in wanted if b in backends or b == "eager"]
    if "eager" not in backends:
        backends.insert(0, "eager")  # the speedup baseline
    variant, G = build_generator(args.model, device)
    peak = _peak(device)
    config = {"model": args.model, "batches": batches, "backends": backends,
              "threads": ctx.threads, "device": str(device), "dtype": "float32",
              "compile": "torch.compile(G, dynamic=False) per batch size",
              "generator_params": sum(p.numel() for p in G.parameters())}
    notes = [
        "latency = one generator call for the whole batch; images/s = batch / p50",
        "speedup = eager p50 / backend p50, measured in the same run",
        "compile_s = torch.compile + first call for that batch size; export_s = one ONNX "
        "export (dynamic batch), both excluded from the timings",
        "min_bytes = weights + buffers + inputs + fp32 images (the least a call must move); "
        "bw_fraction = achieved_gbps / device peak (N/A on CPU or an unknown GPU)",
    ]
    ort: dict[str, OrtBackend | Exception] = {}
    with tempfile.TemporaryDirectory(prefix="gan-accel-bench-") as tmp:
        ort = _open_ort(variant, [b for b in backends if b.startswith("ort-")],
                        Path(tmp) / f"{args.model}.onnx", ctx)
        variant.to(device)
        G = variant.G.eval()
        rows = []
        dead: set[str] = set()  # backends that ran out of memory at a smaller batch
        for b in batches:
            latent = variant.latent.sample(b, device, torch.Generator(device).manual_seed(b))
            with torch.inference_mode():
                reference = G(**latent)
            nbytes = min_bytes(G, latent, reference.numel())
            for name in backends:
                row = {"model": args.model, "backend": name, "batch": b, "min_bytes": nbytes}
                if name in dead:
                    row.update(status="skipped: out of memory at a smaller batch")
                else:
                    try:
                        row.update(_measure(name, G, latent, reference, ort.get(name), ctx))
                    except torch.OutOfMemoryError:
                        dead.add(name)
                        row.update(status="oom")
                        torch.cuda.empty_cache()
                    except Exception as exc:  # noqa: BLE001 - one backend failing is a row
                        row.update(status=f"error: {type(exc).__name__}: {exc}"[:300])
                _finish_row(row, nbytes, peak)
                rows.append(row)
                log(_line(row))
    exporters = {o.exporter for o in ort.values() if isinstance(o, OrtBackend)}
    if exporters:
        config["onnx_exporter"] = sorted(exporters)[0]
        notes.append("ort rows run the exported graph (export/ folds BatchNorm into the convs "
                     "and may rewrite layers): same images, not the same op sequence as eager")
    add_speedups(rows, ("model", "batch"), "backend", "eager")
    for r in rows:
        for k in ("p20_ms", "p50_ms", "p80_ms", "samples", "speedup"):
            r.setdefault(k, None)
    if device.type != "cuda":
        notes.append("bandwidth fraction: N/A on CPU (no reliable peak DRAM figure)")
    notes.append(compile_cache_note())
    return Result("inference", config, rows, notes)


def _open_ort(variant, names: list[str], path: Path, ctx: Context) -> dict:
    """Export once, then one session per ONNX Runtime backend (an exception if it failed)."""
    if not names:
        return {}
    try:
        exporter, export_s = _export(variant, path, ctx.log)
    except Exception as exc:  # noqa: BLE001 - reported in every ORT row
        ctx.log(f"inference: ONNX export failed: {type(exc).__name__}: {exc}")
        return dict.fromkeys(names, exc)
    out: dict = {}
    for name in names:
        provider = "CUDAExecutionProvider" if name == "ort-cuda" else "CPUExecutionProvider"
        try:
            out[name] = OrtBackend(path, provider, ctx.threads, exporter, export_s)
        except Exception as exc:  # noqa: BLE001 - reported in the rows
            out[name] = exc
            ctx.log(f"inference: {name} unavailable: {type(exc).__name__}: {exc}")
    return out


def _peak(device: torch.device) -> float | None:
    from .common import peak_bandwidth_gbps

    return peak_bandwidth_gbps(device)


def _measure(name: str, G, latent, reference, ort, ctx: Context) -> dict:
    device = ctx.device
    row: dict = {}
    if name == "eager":
        def call():
            with torch.inference_mode():
                return G(**latent)
        timed_once(call, device)
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
    else:
        if isinstance(ort, Exception) or ort is None:
            return {"status": f"unavailable: {type(ort).__name__}: {ort}"[:300]}
        inputs = {k: v.detach().cpu().numpy() for k, v in latent.items()}

        def call():
            return ort.run(inputs)
        timed_once(call, device)
        row["export_s"] = round(ort.export_s, 3)
        row["exporter"] = ort.exporter
    out = call()
    out = torch.as_tensor(np.asarray(out.cpu() if torch.is_tensor(out) else out))
    row["max_abs_diff"] = float((out.float() - reference.float().cpu()).abs().max())
    # ONNX Runtime takes and returns host numpy arrays: a synchronous call, timed on the host
    timing = time_fn(call, device, ctx.threads, ctx.budget, host=name.startswith("ort-"))
    row.update(timing.as_row())
    row["status"] = "ok"
    return row


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


def _line(row: dict) -> str:
    if row.get("p50_ms") is None:
        return f"  {row['backend']:<12} batch {row['batch']:>5}: {row.get('status')}"
    extra = ""
    if "compile_s" in row:
        extra = f"  (compile {row['compile_s']:.1f} s)"
    return (f"  {row['backend']:<12} batch {row['batch']:>5}: p50 {row['p50_ms']:.3f} ms "
            f"[{row['p20_ms']:.3f}, {row['p80_ms']:.3f}]  {row['images_per_s']:,.0f} img/s"
            + extra)
