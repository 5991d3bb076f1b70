"""The fused kernels against their PyTorch counterparts: µs per call, GB/s, bandwidth fraction.

* spectral norm, one training forward (power iteration + sigma + W / sigma) and forward +
  backward, on weight matrices ``[out, in*k*k]``: the seed D's (32x16, 64x128, 128x1024,
  1x2048), InfoGAN's heads (10x2048) and a sweep of bigger ones. Implementations:
  ``torch-parametrization`` (``torch.nn.utils.parametrizations.spectral_norm``, the baseline),
  ``torch-reference`` (``kernels.torch_spectral_norm``), the same under ``torch.compile``,
  and ``triton`` (``kernels.spectral_norm(..., impl="triton")``).
* gradient-penalty norm ``mean_i((||g_i|| - 1)^2)``, forward and forward + backward, on
  ``[B, N]`` gradients: ``torch`` (the composite, ``kernels.torch_gp_norm_penalty``, the
  baseline), ``torch-compiled`` and ``triton``.

GB/s counts the least traffic each call needs (spectral norm forward: read W, write W/sigma;
backward: read dL/dW_sn and W, write dL/dW; penalty forward: read g; backward: read g, write
dg; the small vectors too), so it is comparable across implementations. On CPU the Triton
kernels only run under the interpreter, whose timings mean nothing: their rows say
"needs CUDA" unless ``--allow-interpreter``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch
from torch import nn

from .common import Context, Result, add_speedups, peak_bandwidth_gbps, time_fn, timed_once

SN_SEED = [(32, 16), (64, 128), (128, 1024), (1, 2048), (10, 2048)]
SN_SWEEP = [(256, 2304), (512, 4608), (1024, 9216), (4096, 4096)]
GP_SEED = [(64, 784)]  # WGAN-GP on 28x28 at batch 64
GP_SWEEP = [(256, 784), (1024, 784), (4096, 784), (16384, 784), (64, 12288), (1024, 12288)]
QUICK_SN = [(64, 128)]
QUICK_GP = [(64, 784)]

SN_IMPLS = ("torch-parametrization", "torch-reference", "torch-reference-compiled", "triton")
GP_IMPLS = ("torch", "torch-compiled", "triton")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("kernels suite")
    g.add_argument("--no-sweep", action="store_true",
                   help="only the seed model's shapes, no sweep of larger ones")


def _shapes(ctx: Context, sweep: bool) -> tuple[list, list]:
    if ctx.quick:
        return QUICK_SN, QUICK_GP
    return SN_SEED + (SN_SWEEP if sweep else []), GP_SEED + (GP_SWEEP if sweep else [])


def run(args: argparse.Namespace, ctx: Context) -> Result:
    device = ctx.device
    sn_shapes, gp_shapes = _shapes(ctx, not args.no_sweep)
    triton_ok = device.type == "cuda" or ctx.allow_interpreter
    interp = device.type != "cuda" and ctx.allow_interpreter
    peak = peak_bandwidth_gbps(device)
    config = {"spectral_norm_shapes": [f"{h}x{k}" for h, k in sn_shapes],
              "gp_norm_shapes": [f"{b}x{n}" for b, n in gp_shapes], "dtype": "float32",
              "n_power_iterations": 1, "device": str(device), "threads": ctx.threads,
              "triton": "cuda" if device.type == "cuda" else
              ("interpreter" if interp else "needs CUDA")}
    notes = ["us_per_call = p50; speedup = baseline p50 / p50 (baseline: "
             "torch-parametrization for spectral_norm, torch for gp_norm)",
             "GB/s counts the minimum traffic (see bench/kernels_bench.py); "
             "bw_fraction = GB/s / device peak (N/A on CPU)",
             "small shapes are launch/overhead-bound: their GB/s is far from the peak"]
    if device.type != "cuda":
        notes.append("CPU: Triton kernels run only under the interpreter; "
                     + ("these triton rows ran under it and their timings are MEANINGLESS"
                        if interp else "their rows are marked 'needs CUDA' (pass "
                        "--allow-interpreter for a smoke run)"))
    rows: list[dict] = []
    passes = ("fwd+bwd",) if ctx.quick else ("fwd", "fwd+bwd")
    cases = [("spectral_norm", s, impl, p) for s in sn_shapes for p in passes
             for impl in SN_IMPLS]
    cases += [("gp_norm", s, impl, p) for s in gp_shapes for p in passes for impl in GP_IMPLS]
    for op, shape, impl, pas in cases:
        row = {"op": op, "shape": f"{shape[0]}x{shape[1]}", "impl": impl, "pass": pas,
               "bytes": _bytes(op, shape, pas)}
        if impl == "triton" and not triton_ok:
            row["status"] = "needs CUDA"
        else:
            try:
                row.update(_measure(op, shape, impl, pas, ctx))
                if interp and impl == "triton":
                    row["status"] = "interpreter (timing meaningless)"
            except Exception as exc:  # noqa: BLE001 - one failing case is a row
                row["status"] = f"error: {type(exc).__name__}: {exc}"[:300]
        _finish(row, peak)
        rows.append(row)
        ctx.log(_line(row))
    for r in rows:
        r["baseline"] = "torch-parametrization" if r["op"] == "spectral_norm" else "torch"
    add_speedups([r for r in rows if r["op"] == "spectral_norm"], ("op", "shape", "pass"),
                 "impl", "torch-parametrization")
    add_speedups([r for r in rows if r["op"] == "gp_norm"], ("op", "shape", "pass"), "impl",
                 "torch")
    return Result("kernels", config, rows, notes)


def _bytes(op: str, shape: tuple[int, int], pas: str) -> int:
    a, b = shape
    if op == "spectral_norm":
        fwd = (2 * a * b + 2 * (a + b)) * 4  # read W, write W/sigma; read+write u, v
        bwd = 3 * a * b * 4  # read grad and W, write dW
    else:
        fwd = a * b * 4 + 4  # read g, write the scalar
        bwd = 2 * a * b * 4  # read g, write dg
    return fwd + (bwd if pas == "fwd+bwd" else 0)


def _finish(row: dict, peak: float | None) -> None:
    p50 = row.get("p50_ms")
    for k in ("p20_ms", "p50_ms", "p80_ms", "samples"):
        row.setdefault(k, None)
    if not p50:
        row.update(us_per_call=None, gbps=None, bw_fraction=None)
        return
    row["us_per_call"] = round(p50 * 1e3, 3)
    gbps = row["bytes"] / (p50 / 1e3) / 1e9
    row["gbps"] = round(gbps, 4)
    row["bw_fraction"] = round(gbps / peak, 5) if peak else None


def _measure(op: str, shape, impl: str, pas: str, ctx: Context) -> dict:
    torch._dynamo.reset()  # compiled cases: a fresh static-shape compile per shape
    torch.manual_seed(0)
    fn = (_sn_case if op == "spectral_norm" else _gp_case)(shape, impl, pas, ctx.device)
    first = timed_once(fn, ctx.device)
    timed_once(fn, ctx.device)
    timing = time_fn(fn, ctx.device, ctx.threads, ctx.budget)
    row = timing.as_row()
    row["status"] = "ok"
    if "compiled" in impl:
        row["compile_s"] = round(first, 3)
    return row


def _sn_case(shape, impl: str, pas: str, device) -> Callable[[], object]:
    """A zero-argument call running one spectral-norm ``pas`` for ``impl`` on [H, K]."""
    from gan_accel import kernels

    h, k = shape
    layer = nn.Linear(k, h, bias=False).to(device)  # weight [H, K]
    grad_out = torch.randn(h, k, device=device)
    if impl in ("torch-parametrization", "triton"):
        if impl == "triton":
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
        def call():
            with torch.no_grad():
                return weight()
    else:
        def call():
            return torch.autograd.grad(weight(), original, grad_out)
    return call


def _gp_case(shape, impl: str, pas: str, device) -> Callable[[], object]:
    """A zero-argument call running one gradient-penalty-norm ``pas`` for ``impl`` on [B, N]."""
    from gan_accel import kernels

    b, n = shape
    side = int(math.isqrt(n))
    dims = (b, 1, side, side) if side * side == n else (b, n)
    g = (torch.randn(*dims, device=device) * 0.05).requires_grad_(pas != "fwd")
    if impl == "triton":
        fn = kernels.triton_gp_norm_penalty
    else:
        fn = kernels.torch_gp_norm_penalty
        if impl == "torch-compiled":
            fn = torch.compile(fn, dynamic=False)
    if pas == "fwd":
        def call():
            with torch.no_grad():
                return fn(g)
    else:
        def call():
            return torch.autograd.grad(fn(g), g)
    return call


def _line(row: dict) -> str:
    head = f"  {row['op']:<13} {row['shape']:>10} {row['pass']:<7} {row['impl']:<25}"
    if row.get("p50_ms") is None:
        return f"{head}: {row.get('status')}"
    return f"{head}: {row['us_per_call']:>10.1f} us  {row['gbps']:.2f} GB/s"
