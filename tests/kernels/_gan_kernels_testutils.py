"""Assertion helpers for the kernels tests (imported by the test files)."""

from __future__ import annotations

import importlib
import os

import pytest
import torch


def _kernels_interpreted() -> bool:
    """TRITON_INTERPRET=1 now AND it was set when ``kernels`` was imported (triton.jit picks
    interpreter or compiler at decoration time)."""
    if os.environ.get("TRITON_INTERPRET", "0").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    from triton.runtime.interpreter import InterpretedFunction

    gp = importlib.import_module("gan_accel.kernels.grad_penalty")
    sn = importlib.import_module("gan_accel.kernels.fused_spectral_norm")
    return isinstance(gp._gp_fwd_kernel, InterpretedFunction) and isinstance(
        sn._sn_fwd_kernel, InterpretedFunction
    )


INTERPRET = _kernels_interpreted()

needs_interpreter = pytest.mark.skipif(
    not INTERPRET,
    reason="Triton on CPU tensors needs the interpreter: TRITON_INTERPRET=1 set before the "
    "kernels package was imported (tests/conftest.py sets it when there is no CUDA)",
)
# string condition: evaluated when the test runs (in the test module's globals), not at import
needs_cuda = pytest.mark.skipif("not torch.cuda.is_available()", reason="needs a CUDA device")

# fp32 comparisons against the reference (different summation order only)
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=2e-5, atol=2e-6),
}


def _describe(name: str, actual: torch.Tensor, expected: torch.Tensor) -> str:
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    flags = []
    for label, t in (("actual", a), ("expected", e)):
        if torch.isnan(t).any():
            flags.append(f"{label} has {int(torch.isnan(t).sum())} NaN")
        if torch.isinf(t).any():
            flags.append(f"{label} has {int(torch.isinf(t).sum())} inf")
    if a.shape != e.shape:
        return f"{name}: shape mismatch {tuple(a.shape)} vs {tuple(e.shape)}"
    if a.numel() == 0:
        return f"{name}: empty"
    diff = (a - e).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
    flat = int(diff.argmax())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)) if a.ndim else ()
    rel = diff / e.abs().clamp_min(1e-30)
    return (
        f"{name}: max abs err {float(diff.max()):.3e} at index {idx} "
        f"(actual {float(a.reshape(-1)[flat]):.6e}, expected {float(e.reshape(-1)[flat]):.6e}); "
        f"max rel err {float(rel.max()):.3e}; {int((diff > 0).sum())}/{a.numel()} differ"
        + (f"; {', '.join(flags)}" if flags else "")
    )


def assert_close(actual, expected, *, rtol, atol, name="tensor"):
    """allclose with a message saying where, by how much, and whether NaN/inf showed up."""
    assert actual.shape == expected.shape, _describe(name, actual, expected)
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    ok = torch.allclose(a, e, rtol=rtol, atol=atol)
    assert ok, _describe(name, actual, expected) + f" [rtol={rtol}, atol={atol}]"


def assert_within_ref_error(kernel, ref_lowp, ref_fp32, *, factor=2.0, slack=None, name="tensor"):
    """Low-precision check: the kernel's error against an fp32 reference must be within
    ``factor`` x the reference's own error in that dtype, plus an absolute ``slack`` that
    defaults to one ulp of the kernel's dtype at the largest reference magnitude.

    The ulp matters when the reference happens to round almost exactly (its own error ~0) and
    for bf16 under the Triton interpreter, whose fp32 -> bf16 cast truncates (compiled Triton
    rounds to nearest even)."""
    k = kernel.detach().double().cpu()
    r = ref_lowp.detach().double().cpu()
    f = ref_fp32.detach().double().cpu()
    if slack is None:
        slack = torch.finfo(kernel.dtype).eps * (float(f.abs().max()) if f.numel() else 0.0)
    assert torch.isfinite(k).all(), _describe(name + " (kernel vs fp32 ref)", kernel, ref_fp32)
    err_k = float((k - f).abs().max()) if k.numel() else 0.0
    err_r = float((r - f).abs().max()) if r.numel() else 0.0
    assert err_k <= factor * err_r + slack, (
        f"{name}: kernel error {err_k:.3e} vs fp32 reference exceeds {factor} x reference's own "
        f"error {err_r:.3e} + {slack:.1e}. " + _describe(name + " (kernel vs fp32 ref)", k, f)
    )
