"""The fused kernels against their PyTorch counterparts, measured the way training pays for them.

Cases (op, shape, impl, pass):

* ``spectral_norm`` on weight matrices ``[out, in*k*k]``: the seed D's (32x16, 64x128,
  128x1024, 1x2048), InfoGAN's heads (10x2048), the largest of the 64x64 Ds at the paper's
  width (the dcgan D's 512x256x4x4 conv: 512x4096; the resnet D's 1024x512x3x3: 1024x4608)
  and a sweep of bigger ones; ``fwd`` is one
  training forward (power iteration + sigma + W / sigma), ``fwd+bwd`` adds the gradient into
  the weight. Implementations: ``torch-parametrization``
  (``torch.nn.utils.parametrizations.spectral_norm``, the baseline), ``torch-reference``
  (``kernels.torch_spectral_norm``), the same under ``torch.compile``, ``triton``
  (``kernels.spectral_norm(..., impl="triton")``, its own choice of one or several programs)
  and, on CUDA, ``triton-1prog`` / ``triton-multi`` forcing either path, so the GPU numbers
  show where the switch (``TileConfig.sn_multi_min``) belongs.
* ``seed_D_sn``: all four spectrally normalised weights of the seed DCGAN D, training
  forward + backward (what one D call costs in spectral norm), parametrization vs triton.
* ``gp_norm`` ``mean_i((||g_i|| - 1)^2)`` on ``[B, N]`` gradients (batch 64 of 1x28x28:
  64x784; of 3x32x32: 64x3072; of 3x64x64: 64x12288): ``torch`` (the composite,
  ``kernels.torch_gp_norm_penalty``, the baseline), ``torch-compiled`` and ``triton``.
* ``dispatch``: host time of one spectral-norm / penalty fwd+bwd with the Triton launches
  replaced by no-ops: the registered ``torch.ops.gan_accel`` path against the direct eager
  path, measured in alternating blocks. Needs no GPU and no interpreter: it is the host cost
  around the kernels.

Every forward runs with grad enabled on inputs that require grad, as in training.

Columns: ``p20/p50/p80_ms`` (and ``us_per_call`` = p50, ``speedup``) are eager host wall time:
back-to-back calls, one synchronize per block, no cache flush (on CPU,
``torch.utils.benchmark``). On CUDA, ``gpu_p20/p50/p80_us`` (and ``gpu_speedup``) are GPU time
from CUDA-graph replay (``triton.testing.do_bench_cudagraph``: launch overhead gone), and
``cuda_kernels`` counts the kernels one call launches (``torch.profiler``; memsets and copies
in ``cuda_mem_ops``). GB/s counts the least traffic each call needs (spectral norm forward:
read W, write W/sigma; backward: read dL/dW_sn and W, write dL/dW; penalty forward: read g;
backward: read g, write dg; the small vectors too) over the GPU time on CUDA, the wall time
elsewhere. On CPU the Triton kernels only run under the interpreter, whose timings mean
nothing: their rows say "needs CUDA" unless ``--allow-interpreter``, and then say they are
meaningless.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .common import (
    Context,
    Result,
    add_speedups,
    peak_bandwidth_gbps,
    sync,
    time_fn,
    timed_once,
)

SN_SEED = [(32, 16), (64, 128), (128, 1024), (1, 2048), (10, 2048)]
# the largest SN weights of the 64x64 Ds at paper width (ndf 64): dcgan's 512x256x4x4 conv,
# resnet's 1024x512x3x3
SN_D64 = [(512, 4096), (1024, 4608)]
SN_SWEEP = [(256, 2304), (512, 4608), (1024, 9216), (4096, 4096)]
GP_SEED = [(64, 784)]  # WGAN-GP on 28x28 at batch 64
GP_COLOUR = [(64, 3072), (64, 12288)]  # batch 64 of 3x32x32 and 3x64x64 inputs
GP_SWEEP = [(256, 784), (1024, 784), (4096, 784), (16384, 784), (1024, 12288)]
QUICK_SN = [(64, 128), (512, 4096)]
QUICK_GP = [(64, 784), (64, 12288)]
# the seed DCGAN D's four spectrally normalised convolutions (ndf = 16, no bias)
SEED_D_CONVS = [(1, 32, 4, 2, 1), (32, 64, 2, 2, 1), (64, 128, 4, 2, 1), (128, 1, 4, 1, 0)]
SEED_D_SHAPE = "4 layers"  # 32x16, 64x128, 128x1024, 1x2048

SN_IMPLS = ("torch-parametrization", "torch-reference", "torch-reference-compiled", "triton")
SN_CUDA_ONLY = ("triton-1prog", "triton-multi")  # the two Triton paths, forced
SEED_D_IMPLS = ("torch-parametrization", "triton")
GP_IMPLS = ("torch", "torch-compiled", "triton")
DISPATCH_IMPLS = ("registered-op", "direct")
BASELINES = {"spectral_norm": "torch-parametrization", "seed_D_sn": "torch-parametrization",
             "gp_norm": "torch", "dispatch": "registered-op"}


ALL_IMPLS = tuple(dict.fromkeys(SN_IMPLS + SN_CUDA_ONLY + SEED_D_IMPLS + GP_IMPLS
                                + DISPATCH_IMPLS))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("kernels suite")
    g.add_argument("--no-sweep", action="store_true",
                   help="only the models' shapes (the seed D, the 64x64 Ds, 28/32/64 px "
                        "penalties), no sweep of larger ones")
    g.add_argument("--kernel-impls", default=None, metavar="NAME,...",
                   help=f"only these implementations (baselines are always kept): "
                        f"{','.join(ALL_IMPLS)}")
    g.add_argument("--progress", default=None, metavar="FILE",
                   help="also append every row to FILE (JSON lines) as soon as it is measured")


def _impl_filter(text: str | None) -> set[str] | None:
    from gan_accel.errors import UserError

    if text is None:
        return None
    names = {n.strip() for n in text.split(",") if n.strip()}
    bad = sorted(names - set(ALL_IMPLS))
    if bad:
        raise UserError(f"--kernel-impls: unknown {', '.join(bad)}; choose from "
                        f"{', '.join(ALL_IMPLS)}")
    return names | set(BASELINES.values())


def _shapes(ctx: Context, sweep: bool) -> tuple[list, list]:
    if ctx.quick:
        return QUICK_SN, QUICK_GP
    return (SN_SEED + SN_D64 + (SN_SWEEP if sweep else []),
            GP_SEED + GP_COLOUR + (GP_SWEEP if sweep else []))


def _cases(ctx: Context, sweep: bool) -> list[tuple[str, tuple, str, str]]:
    sn_shapes, gp_shapes = _shapes(ctx, sweep)
    passes = ("fwd+bwd",) if ctx.quick else ("fwd", "fwd+bwd")
    sn_impls = SN_IMPLS + (SN_CUDA_ONLY if ctx.device.type == "cuda" else ())
    cases = [("spectral_norm", s, impl, p) for s in sn_shapes for p in passes
             for impl in sn_impls]
    cases += [("seed_D_sn", SEED_D_SHAPE, impl, "fwd+bwd") for impl in SEED_D_IMPLS]
    cases += [("gp_norm", s, impl, p) for s in gp_shapes for p in passes for impl in GP_IMPLS]
    cases += [("dispatch", s, impl, "fwd+bwd") for s in ("sn 128x1024", "gp 64x784")
              for impl in DISPATCH_IMPLS]
    return cases


def run(args: argparse.Namespace, ctx: Context) -> Result:
    device = ctx.device
    cuda = device.type == "cuda"
    keep = _impl_filter(getattr(args, "kernel_impls", None))
    cases = [c for c in _cases(ctx, not args.no_sweep) if keep is None or c[2] in keep]
    progress = getattr(args, "progress", None)
    if progress:
        Path(progress).parent.mkdir(parents=True, exist_ok=True)
    triton_ok = cuda or ctx.allow_interpreter
    interp = not cuda and ctx.allow_interpreter
    peak = peak_bandwidth_gbps(device)
    config = {"cases": len(cases), "dtype": "float32", "n_power_iterations": 1,
              "seed_D_sn_matrices": ["32x16", "64x128", "128x1024", "1x2048"],
              "device": str(device), "threads": ctx.threads,
              "spectral_norm_shapes": sorted({c[1] for c in cases if c[0] == "spectral_norm"}),
              "gp_norm_shapes": sorted({c[1] for c in cases if c[0] == "gp_norm"}),
              "triton": "cuda" if cuda else ("interpreter" if interp else "needs CUDA"),
              "wall_timer": "back-to-back calls, one sync per block, no cache flush",
              "gpu_timer": "triton.testing.do_bench_cudagraph" if cuda else None}
    if triton_ok:
        from gan_accel.kernels._launch import tile_config

        config["tile_config"] = dataclasses.asdict(tile_config(device))
    notes = ["p20/p50/p80_ms, us_per_call, speedup: eager host wall time (back-to-back calls, "
             "one sync per block, no L2 flush); speedup = baseline p50 / p50 (baselines: "
             "torch-parametrization for spectral_norm and seed_D_sn, torch for gp_norm, "
             "registered-op for dispatch)",
             "gpu_*_us, gpu_speedup: GPU time per call from CUDA-graph replay "
             "(do_bench_cudagraph), CUDA only; cuda_kernels: kernels launched per call "
             "(torch.profiler), memsets/copies in cuda_mem_ops",
             "forward rows run with grad enabled on inputs that require grad, as in training",
             "GB/s counts the minimum traffic (see bench/kernels_bench.py) over the GPU time "
             "on CUDA, the wall time elsewhere; bw_fraction = GB/s / device peak (N/A on CPU)",
             "seed_D_sn: the seed DCGAN D's four SN weights, training fwd+bwd together",
             "spectral_norm 512x4096 / 1024x4608: the largest SN weights of the 64x64 dcgan / "
             "resnet Ds at paper width (ndf 64); gp_norm 64x784 / 64x3072 / 64x12288: the "
             "penalty at batch 64 of 1x28x28 / 3x32x32 / 3x64x64 inputs",
             "dispatch: host time with the Triton launches stubbed out (no kernel runs): the "
             "registered custom-op path vs the direct eager path",
             "small shapes are launch/overhead-bound: their GB/s is far from the peak"]
    if not cuda:
        notes.append("CPU: Triton kernels run only under the interpreter; "
                     + ("these triton rows ran under it and their timings are MEANINGLESS"
                        if interp else "their rows are marked 'needs CUDA' (pass "
                        "--allow-interpreter for a smoke run)"))
    rows: list[dict] = []
    dispatch: dict[str, dict] = {}  # both dispatch paths of a shape are measured together
    for op, shape, impl, pas in cases:
        shape_s = shape if isinstance(shape, str) else f"{shape[0]}x{shape[1]}"
        row = {"op": op, "shape": shape_s, "impl": impl, "pass": pas,
               "bytes": _bytes(op, shape, pas), "baseline": BASELINES[op]}
        if impl.startswith("triton") and not triton_ok:
            row["status"] = "needs CUDA"
        else:
            try:
                if op == "dispatch":
                    if shape not in dispatch:
                        dispatch[shape] = _measure_dispatch(shape, ctx)
                    row.update(dispatch[shape][impl])
                else:
                    row.update(_measure(op, shape, impl, pas, ctx))
                if interp and impl.startswith("triton"):
                    row["status"] = "interpreter (timing meaningless)"
            except Exception as exc:  # noqa: BLE001 - one failing case is a row
                row["status"] = f"error: {type(exc).__name__}: {exc}"[:300]
        _finish(row, peak)
        rows.append(row)
        ctx.log(_line(row))
        if progress:
            with open(progress, "a") as f:
                f.write(json.dumps(row, default=str) + "\n")
    for op, base in BASELINES.items():
        group = [r for r in rows if r["op"] == op]
        add_speedups(group, ("op", "shape", "pass"), "impl", base)
        _add_gpu_speedups(group, base)
    for r in rows:  # interpreter timings are kept for the record, but compare with nothing
        if str(r.get("status", "")).startswith("interpreter"):
            r.update(speedup=None, gbps=None, bw_fraction=None)
    return Result("kernels", config, rows, notes)


def _bytes(op: str, shape, pas: str) -> int | None:
    if op == "dispatch":
        return None
    if op == "seed_D_sn":
        mats = [(co, ci * k * k) for ci, co, k, _, _ in SEED_D_CONVS]
        return sum(_bytes("spectral_norm", m, pas) for m in mats)
    a, b = shape
    if op == "spectral_norm":
        fwd = (2 * a * b + 2 * (a + b)) * 4  # read W, write W/sigma; read+write u, v
        bwd = 3 * a * b * 4  # read grad and W, write dW
    else:
        fwd = a * b * 4 + 4  # read g, write the scalar
        bwd = 2 * a * b * 4  # read g, write dg
    return fwd + (bwd if pas == "fwd+bwd" else 0)


def _finish(row: dict, peak: float | None) -> None:
    for k in ("p20_ms", "p50_ms", "p80_ms", "samples", "gpu_p20_us", "gpu_p50_us",
              "gpu_p80_us", "cuda_kernels", "cuda_mem_ops"):
        row.setdefault(k, None)
    p50 = row["p50_ms"]
    row["us_per_call"] = round(p50 * 1e3, 3) if p50 else None
    seconds = row["gpu_p50_us"] / 1e6 if row["gpu_p50_us"] else (p50 / 1e3 if p50 else None)
    if not seconds or not row["bytes"]:
        row.update(gbps=None, bw_fraction=None)
        return
    gbps = row["bytes"] / seconds / 1e9
    row["gbps"] = round(gbps, 4)
    row["gbps_from"] = "gpu" if row["gpu_p50_us"] else "wall"
    row["bw_fraction"] = round(gbps / peak, 5) if peak else None


def _add_gpu_speedups(rows: list[dict], baseline: str) -> None:
    base = {(r["shape"], r["pass"]): r["gpu_p50_us"] for r in rows
            if r["impl"] == baseline and r.get("gpu_p50_us")}
    for r in rows:
        b = base.get((r["shape"], r["pass"]))
        r["gpu_speedup"] = round(b / r["gpu_p50_us"], 3) if b and r.get("gpu_p50_us") else None


# -- timing ------------------------------------------------------------------------------------


def _wall_cuda(fn: Callable[[], object], device: torch.device, ctx: Context) -> dict:
    """Eager host wall time on CUDA: blocks of back-to-back calls, one synchronize per block
    (so queueing overlaps as in a training loop), no cache flush; quantiles over blocks."""
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(10):
        fn()
    torch.cuda.synchronize(device)
    estimate = max((time.perf_counter() - t0) / 10, 1e-7)
    target = ctx.budget.rep_ms / 1e3 / 4  # seconds per block
    n = max(5, min(10_000, int(target / estimate)))
    blocks = max(ctx.budget.min_samples, 5)
    times = []
    for _ in range(blocks):
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) / n * 1e3)
    q = statistics.quantiles(times, n=10, method="inclusive")
    return {"p20_ms": q[1], "p50_ms": statistics.median(times), "p80_ms": q[7],
            "samples": blocks, "timer": f"wall: {blocks} blocks x {n} back-to-back calls"}


def _gpu_time(fn: Callable[[], object], ctx: Context) -> dict:
    """GPU time per call by CUDA-graph replay (no launch overhead), in microseconds."""
    import triton.testing

    # do_bench_cudagraph replays a graph of ~rep ms of calls 10 times: rep_ms / 10 keeps a
    # case near the wall-time measurement's cost
    try:
        p20, p50, p80 = triton.testing.do_bench_cudagraph(
            fn, rep=max(2, ctx.budget.rep_ms // 10), quantiles=[0.2, 0.5, 0.8])
    except Exception as exc:  # noqa: BLE001 - a call that cannot be captured is a note
        return {"gpu_status": f"graph capture failed: {type(exc).__name__}: {exc}"[:200]}
    return {"gpu_p20_us": round(p20 * 1e3, 3), "gpu_p50_us": round(p50 * 1e3, 3),
            "gpu_p80_us": round(p80 * 1e3, 3), "gpu_status": "ok"}


def _kernel_counts(fn: Callable[[], object], device: torch.device) -> dict:
    """CUDA kernels (and memsets / copies) one call launches, from torch.profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize(device)
    names = Counter(e.name for e in prof.events() if e.device_type == DeviceType.CUDA)
    mem = {n: c for n, c in names.items() if n.startswith(("Memset", "Memcpy", "memset",
                                                           "memcpy"))}
    kernels = {n: c for n, c in names.items() if n not in mem}
    summary = "; ".join(f"{n[:60]} x{c}" for n, c in sorted(kernels.items()))
    return {"cuda_kernels": sum(kernels.values()), "cuda_mem_ops": sum(mem.values()),
            "cuda_kernel_names": summary[:600]}


def _measure(op: str, shape, impl: str, pas: str, ctx: Context) -> dict:
    torch._dynamo.reset()  # compiled cases: a fresh static-shape compile per shape
    torch.manual_seed(0)
    make = {"spectral_norm": _sn_case, "seed_D_sn": _seed_d_case, "gp_norm": _gp_case,
            "dispatch": _dispatch_case}[op]
    with make(shape, impl, pas, ctx.device) as fn:
        first = timed_once(fn, ctx.device)
        timed_once(fn, ctx.device)
        if ctx.device.type == "cuda" and op != "dispatch":
            row = _wall_cuda(fn, ctx.device, ctx)
            row.update(_gpu_time(fn, ctx))
            row.update(_kernel_counts(fn, ctx.device))
        else:
            row = time_fn(fn, ctx.device, ctx.threads, ctx.budget, host=True).as_row()
    row["status"] = "ok"
    if "compiled" in impl:
        row["compile_s"] = round(first, 3)
    return row


def _measure_dispatch(shape: str, ctx: Context) -> dict[str, dict]:
    """Both dispatch paths of ``shape``, in alternating blocks of back-to-back calls, so that
    a change of machine load hits both alike; quantiles over the blocks of each."""
    rounds = max(7, ctx.budget.min_samples)
    with _dispatch_case(shape, DISPATCH_IMPLS[0], "fwd+bwd", ctx.device) as fn:
        for _ in range(20):
            fn()
        t0 = time.perf_counter()
        for _ in range(20):
            fn()
        estimate = max((time.perf_counter() - t0) / 20, 1e-7)
    n = max(20, int(ctx.budget.min_run_time / (2 * rounds) / estimate))
    times: dict[str, list[float]] = {impl: [] for impl in DISPATCH_IMPLS}
    for _ in range(rounds):
        for impl in DISPATCH_IMPLS:
            with _dispatch_case(shape, impl, "fwd+bwd", ctx.device) as fn:
                fn()
                sync(ctx.device)
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                sync(ctx.device)
                times[impl].append((time.perf_counter() - t0) / n * 1e3)
    out = {}
    for impl, ms in times.items():
        q = statistics.quantiles(ms, n=10, method="inclusive")
        out[impl] = {"p20_ms": q[1], "p50_ms": statistics.median(ms), "p80_ms": q[7],
                     "samples": rounds, "status": "ok",
                     "timer": f"host: {rounds} rounds x {n} calls, the two paths alternating"}
    return out


# -- cases: each a context manager yielding a zero-argument call ------------------------------


def _forced_path(impl: str, device: torch.device):
    """``triton-1prog`` / ``triton-multi``: force the one-program or multi-program kernels."""
    from gan_accel.kernels._launch import tile_config, use_tiles

    cfg = tile_config(device)
    if impl == "triton-1prog":
        return use_tiles(dataclasses.replace(cfg, sn_multi_min=2**62))
    if impl == "triton-multi":
        return use_tiles(dataclasses.replace(cfg, sn_multi_min=1))
    return contextlib.nullcontext()


@contextlib.contextmanager
def _sn_case(shape, impl: str, pas: str, device):
    """One spectral-norm ``pas`` for ``impl`` on [H, K], in training mode, grad enabled."""
    from gan_accel import kernels

    h, k = shape
    layer = nn.Linear(k, h, bias=False).to(device)  # weight [H, K]
    grad_out = torch.randn(h, k, device=device)
    if impl.startswith("triton") or impl == "torch-parametrization":
        if impl.startswith("triton"):
            module = kernels.spectral_norm(layer, impl="triton")
        else:
            module = nn.utils.parametrizations.spectral_norm(layer)
        module.train()
        original = module.parametrizations.weight.original

        def weight():
            return module.weight
    else:
        original = layer.weight
        init = nn.utils.parametrizations.spectral_norm(nn.Linear(k, h, bias=False)).to(device)
        u = init.parametrizations.weight[0]._u.clone()
        v = init.parametrizations.weight[0]._v.clone()
        ref = kernels.torch_spectral_norm
        if impl == "torch-reference-compiled":
            ref = torch.compile(ref, dynamic=False)

        def weight():
            return ref(original, u, v, 1, 1e-12, 0, True)

    if pas == "fwd":
        call = weight
    else:
        def call():
            return torch.autograd.grad(weight(), original, grad_out)
    with _forced_path(impl, device):
        yield call


@contextlib.contextmanager
def _seed_d_case(shape, impl: str, pas: str, device):
    """The seed D's four SN weights, training forward, then one backward into all four."""
    from gan_accel import kernels

    convs = [nn.Conv2d(ci, co, k, s, p, bias=False).to(device)
             for ci, co, k, s, p in SEED_D_CONVS]
    if impl == "triton":
        layers = [kernels.spectral_norm(c, impl="triton") for c in convs]
    else:
        layers = [nn.utils.parametrizations.spectral_norm(c) for c in convs]
    for m in layers:
        m.train()
    originals = [m.parametrizations.weight.original for m in layers]
    grads = [torch.randn_like(w) for w in originals]

    def call():
        return torch.autograd.grad([m.weight for m in layers], originals, grads)

    yield call


@contextlib.contextmanager
def _gp_case(shape, impl: str, pas: str, device):
    """One gradient-penalty-norm ``pas`` for ``impl`` on [B, N], grad enabled."""
    from gan_accel import kernels

    b, n = shape
    side = int(math.isqrt(n))
    dims = (b, 1, side, side) if side * side == n else (b, n)
    g = (torch.randn(*dims, device=device) * 0.05).requires_grad_()
    if impl == "triton":
        fn = kernels.triton_gp_norm_penalty
    else:
        fn = kernels.torch_gp_norm_penalty
        if impl == "torch-compiled":
            fn = torch.compile(fn, dynamic=False)
    if pas == "fwd":
        def call():
            return fn(g)
    else:
        def call():
            return torch.autograd.grad(fn(g), g)
    yield call


class _NoLaunch:
    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def _dispatch_case(shape: str, impl: str, pas: str, device):
    """Host time around the kernels: every Triton launch replaced by a no-op, the device
    check passed, and the autograd.Functions forced onto the registered ops or onto the
    direct launcher calls. Restores everything on exit."""
    from gan_accel.kernels import fused_spectral_norm as sn
    from gan_accel.kernels import grad_penalty as gp

    saved = []
    for module in (sn, gp):
        direct = impl == "direct"
        patches = {"check_triton_device": lambda *a, **k: None,
                   "eager_direct_ok": lambda *tensors, _d=direct: _d}
        patches.update({name: _NoLaunch() for name in dir(module)
                        if name.startswith("_") and name.endswith("_kernel")})
        for name, value in patches.items():
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)
    try:
        if shape.startswith("sn"):
            w = torch.randn(128, 1024, device=device, requires_grad=True)
            u, v = torch.randn(128, device=device), torch.randn(1024, device=device)
            grad = torch.randn(128, 1024, device=device)

            def call():
                out = sn.triton_spectral_norm(w, u, v, 1, 1e-12, 0, True)
                return torch.autograd.grad(out, w, grad)
        else:
            g = torch.randn(64, 784, device=device, requires_grad=True)

            def call():
                return torch.autograd.grad(gp.triton_gp_norm_penalty(g), g)
        yield call
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)


def _line(row: dict) -> str:
    head = f"  {row['op']:<13} {row['shape']:>12} {row['pass']:<7} {row['impl']:<25}"
    if row.get("p50_ms") is None:
        return f"{head}: {row.get('status')}"
    gpu = f"  gpu {row['gpu_p50_us']:.1f} us" if row.get("gpu_p50_us") else ""
    kern = f"  {row['cuda_kernels']} kernels" if row.get("cuda_kernels") is not None else ""
    return f"{head}: {row['us_per_call']:>10.1f} us wall{gpu}{kern}"
