"""One full training step per variant: eager vs compiled vs compiled + Triton kernels.

A "step" is ``Trainer.train_step(real, labels)`` on real batches from the trainer's own data
loader: every phase due at that step (D, G, InfoGAN's info phase, ...). Variants whose
phases do not all run every step (WGAN: G once per ``n_critic`` D steps) are timed over a
whole cycle of ``lcm(phase.every)`` steps and reported per step, so the numbers include every
phase in its true proportion.

Modes: ``eager`` (``--kernels torch``), ``compiled`` (``--compile``, PyTorch ops),
``compiled+triton`` (``--compile --kernels triton``: the fused spectral-norm / gradient-penalty
kernels; CUDA only, or the Triton interpreter with ``--allow-interpreter`` for a smoke run),
and on CUDA ``reduce-overhead`` / ``reduce-overhead+triton`` (``--compile-mode
reduce-overhead``: CUDA graphs). ``--train-batch 64,1024`` times each batch size.

``--resolution 64 --channels 3`` (and ``--arch``, ``--ngf``, ``--ndf``) time the nets at
that image shape (``--arch auto``: each variant's own) on the embedded MNIST subset resized
and with its gray copied to R, G and B (the row's ``data`` column): a step's cost does not
depend on the pixel values.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import tempfile
import warnings

import torch

from gan_accel.models.arch import ARCH_CHOICES

from .common import (
    Context,
    Result,
    add_speedups,
    compile_cache_note,
    parse_names,
    time_fn,
    timed_once,
)

MODES = ("eager", "compiled", "compiled+triton", "reduce-overhead", "reduce-overhead+triton")
CPU_MODES = ("eager", "compiled", "compiled+triton")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("train suite")
    g.add_argument("--models", default=None, metavar="NAME,...",
                   help="variants to time (default: every variant; --quick: dcgan)")
    g.add_argument("--train-batch", default=None, metavar="B[,B...]",
                   help="images per training step, one run each (default: 64; --quick: 16)")
    g.add_argument("--modes", default=None, metavar="MODE,...",
                   help=f"subset of {','.join(MODES)} (default: all on CUDA, else "
                        f"{','.join(CPU_MODES)}; +triton needs CUDA or --allow-interpreter, "
                        "reduce-overhead needs CUDA)")
    g.add_argument("--resolution", type=int, default=0, choices=(0, 28, 32, 64),
                   help="image side of the timed nets (default 0: the dataset's, 28)")
    g.add_argument("--channels", type=int, default=0, choices=(0, 1, 3),
                   help="image channels of the timed nets (default 0: the dataset's, 1)")
    g.add_argument("--arch", default="auto", choices=ARCH_CHOICES,
                   help="architecture of every timed variant (default auto: each variant's "
                        "own at the resolution; docs/architectures.md)")
    g.add_argument("--ngf", type=int, default=0, metavar="N",
                   help="generator width (default 0: the architecture's paper width)")
    g.add_argument("--ndf", type=int, default=0, metavar="N",
                   help="discriminator width (default 0: the architecture's paper width)")


def net_options(args) -> dict:
    """The nets' shape options of the train suite, as TrainConfig fields."""
    return {k: getattr(args, k) for k in ("resolution", "channels", "arch", "ngf", "ndf")}


def _models(args, quick: bool) -> list[str]:
    from gan_accel.variants import VARIANTS

    default = ["dcgan"] if quick else list(VARIANTS)
    return parse_names(args.models, list(VARIANTS), default, "--models")


def train_batches(args, quick: bool) -> list[int]:
    """``--train-batch`` as a list of batch sizes."""
    from .inference import parse_int_list

    if not args.train_batch:
        return [16 if quick else 64]
    return parse_int_list(args.train_batch, "--train-batch")


def _modes(text: str | None, device: torch.device) -> list[str]:
    from gan_accel.errors import UserError

    if not text:
        return list(MODES if device.type == "cuda" else CPU_MODES)
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in MODES]
    if bad:
        raise UserError(f"--modes: unknown {', '.join(bad)}; choose from {', '.join(MODES)}")
    if "eager" not in names:
        names.insert(0, "eager")  # the speedup baseline
    return names


def make_trainer(model: str, mode: str, batch: int, device: torch.device, out: str,
                 **nets):
    """A Trainer for ``model`` in ``mode`` with the preset's hyperparameters; ``nets``:
    :func:`net_options` (the image shape, architecture and widths)."""
    from gan_accel.training.trainer import Trainer
    from gan_accel.variants import recipe_config

    kernels = "triton" if mode.endswith("+triton") else "torch"
    compile_mode = "reduce-overhead" if mode.startswith("reduce-overhead") else "default"
    cfg = recipe_config(model, batch_size=batch, progress=False, out=out,
                             device=str(device), compile=mode != "eager",
                             compile_mode=compile_mode, kernels=kernels, **nets)
    return Trainer(cfg, log=lambda *a: None)


def step_batches(trainer, k: int) -> tuple[list, str]:
    """``k`` batches of the trainer's data for one timed cycle, and what that data is."""
    batches = list(itertools.islice(trainer.loader.epoch(0), k))
    assert len(batches) == k, "dataset too small for one cycle"
    cfg = trainer.cfg
    return batches, f"{trainer.data.name} {cfg.channels}x{cfg.resolution}x{cfg.resolution}"


def _reshaped(nets: dict) -> str:
    """How the 1 x 28 x 28 embedded subset was reshaped for the timed nets."""
    said = [f"resized to {nets['resolution']}x{nets['resolution']}"] \
        if nets["resolution"] not in (0, 28) else []
    said += ["gray copied to R, G and B"] if nets["channels"] == 3 else []
    return f", {', '.join(said)}" if said else ""


def cycle_length(trainer) -> int:
    return math.lcm(*(ph.every for ph in trainer.phases))


def run(args: argparse.Namespace, ctx: Context) -> Result:
    device, log = ctx.device, ctx.log
    models = _models(args, ctx.quick)
    modes = _modes(args.modes, device)
    batches = train_batches(args, ctx.quick)
    nets = net_options(args)
    config = {"models": models, "modes": modes, "batches": batches, "device": str(device),
              "threads": ctx.threads, "dataset": "mnist-5k (embedded)" + _reshaped(nets),
              "dtype": "float32", **nets}
    mem_kind = ("torch.cuda.max_memory_allocated over one untimed cycle (every CUDA tensor: "
                "model, optimizer state, the dataset on the device, activations); step_mem_mb "
                "= that peak minus what was allocated before the cycle" if device.type == "cuda"
                else "state_mem_mb (params, buffers, optimizer state) + step_mem_mb, the peak of "
                "CPU tensor bytes allocated during one untimed cycle beyond those live at its "
                "start (torch.profiler allocation events); tensor bytes, not process RSS")
    notes = ["time per training step (all phases due, cycle-averaged); images/s = batch / p50",
             "speedup = eager p50 / mode p50 for the same variant, measured in the same run",
             "compile_s = first cycle (Dynamo + Inductor compile of every phase + one step)",
             f"peak_mem_mb: {mem_kind}"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gan-accel-bench-train-") as tmp:
        for model, batch, mode in itertools.product(models, batches, modes):
            row = {"model": model, "mode": mode, "batch": batch}
            if mode.startswith("reduce-overhead") and device.type != "cuda":
                row["status"] = "needs CUDA (CUDA graphs)"
            elif mode.endswith("+triton") and device.type != "cuda" \
                    and not ctx.allow_interpreter:
                row["status"] = "needs CUDA (Triton kernels; --allow-interpreter for a " \
                                "CPU smoke run)"
            else:
                try:
                    row.update(_measure(model, mode, batch, f"{tmp}/{model}-{mode}", ctx,
                                        nets))
                except torch.OutOfMemoryError:
                    row["status"] = "oom"
                    torch.cuda.empty_cache()
                except Exception as exc:  # noqa: BLE001 - one failing variant is a row
                    row["status"] = f"error: {type(exc).__name__}: {exc}"[:300]
            for k in ("p20_ms", "p50_ms", "p80_ms", "samples", "images_per_s"):
                row.setdefault(k, None)
            rows.append(row)
            log(_line(row))
    add_speedups(rows, ("model", "batch"), "mode", "eager")
    shaped = nets["resolution"] or nets["channels"]
    tag = f"{nets['resolution'] or 28}px-{nets['channels'] or 1}ch" if shaped else ""
    if device.type != "cuda" and "compiled+triton" in modes and ctx.allow_interpreter:
        notes.append("compiled+triton rows ran under the Triton CPU interpreter: their "
                     "timings are meaningless (smoke run only)")
    notes.append(compile_cache_note())
    return Result("train", config, rows, notes, tag=tag)


def _measure(model: str, mode: str, batch: int, out: str, ctx: Context, nets: dict) -> dict:
    device = ctx.device
    torch._dynamo.reset()  # every trainer compiles afresh (shared loss code objects)
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = make_trainer(model, mode, batch, device, out, **nets)
    k = cycle_length(trainer)
    real_batches, data = step_batches(trainer, k)

    def cycle():
        for real, labels in real_batches:
            trainer.train_step(real, labels)

    compile_s = timed_once(cycle, device)
    for _ in range(1 if ctx.quick else 2):
        timed_once(cycle, device)
    timing = time_fn(cycle, device, ctx.threads, ctx.budget)
    cfg = trainer.cfg
    row = {"phases": ",".join(ph.name for ph in trainer.phases), "steps_per_sample": k,
           "arch": cfg.arch, "ngf": cfg.ngf, "ndf": cfg.ndf, "data": data,
           "p20_ms": timing.p20_ms / k, "p50_ms": timing.p50_ms / k,
           "p80_ms": timing.p80_ms / k, "samples": timing.samples, "timer": timing.method,
           "images_per_s": round(batch / (timing.p50_ms / k / 1e3), 1),
           "compile_s" if mode != "eager" else "first_cycle_s": round(compile_s, 3),
           "kernels": trainer.ops.name}
    row.update(_peak_memory(trainer, cycle, device))
    if device.type == "cuda":
        row["cuda_kernels_per_step"] = round(cuda_kernel_count(cycle) / k, 1)
    row["status"] = "ok"
    return row


def cuda_kernel_count(fn) -> int:
    """CUDA kernels launched by ``fn()``, from the profiler (a CUDA graph replay counts its
    kernels too)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA"
               and not e.name.startswith(("Memcpy", "Memset")))


def _state_bytes(trainer) -> int:
    """Bytes of the tensors that live across steps: variant params/buffers, optimizer state."""
    seen: dict[int, int] = {}
    tensors = list(trainer.variant.parameters()) + list(trainer.variant.buffers())
    for opt in trainer.optims.values():
        for state in opt.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    for t in tensors:
        seen[t.data_ptr()] = t.numel() * t.element_size()
    return sum(seen.values())


def cpu_transient_peak(fn) -> int:
    """Peak bytes of CPU tensors allocated by ``fn()`` beyond those live when it started.

    From the profiler's allocation events (``profile_memory=True``): their running sum in
    time order, maximised; covers eager and Inductor-compiled code alike.
    """
    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and str(e.device_type()).endswith("CPU"))
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def _peak_memory(trainer, cycle, device: torch.device) -> dict:
    state = _state_bytes(trainer)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        cycle()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"peak_mem_mb": round(peak / 2**20, 2),
                "step_mem_mb": round((peak - before) / 2**20, 2),
                "state_mem_mb": round(state / 2**20, 2), "mem_kind": "cuda_max_allocated"}
    transient = cpu_transient_peak(cycle)
    return {"peak_mem_mb": round((state + transient) / 2**20, 2),
            "step_mem_mb": round(transient / 2**20, 2),
            "state_mem_mb": round(state / 2**20, 2), "mem_kind": "cpu_profiler_allocations"}


def _line(row: dict) -> str:
    if row.get("p50_ms") is None:
        return f"  {row['model']:<8} {row['mode']:<16}: {row.get('status')}"
    extra = f"  (compile {row['compile_s']:.1f} s)" if "compile_s" in row else ""
    return (f"  {row['model']:<8} {row['mode']:<16}: {row['p50_ms']:.2f} ms/step "
            f"[{row['p20_ms']:.2f}, {row['p80_ms']:.2f}]  {row['images_per_s']:,.0f} img/s"
            + extra)
