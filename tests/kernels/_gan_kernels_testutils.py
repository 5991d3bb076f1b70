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


def triton_runnable() -> bool:
    """The Triton kernels can run here: interpreted on CPU tensors, or compiled on CUDA."""
    return INTERPRET or torch.cuda.is_available()


def triton_device() -> torch.device:
    """CPU tensors under the interpreter, CUDA tensors when the kernels are compiled (and the
    CPU for reference-only tests where neither is possible)."""
    if not INTERPRET and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


# the Triton kernels run (interpreter on CPU, compiled on CUDA); conftest skips otherwise
needs_triton = pytest.mark.triton
# string condition: evaluated when the test runs (in the test module's globals), not at import
needs_cuda = pytest.mark.skipif("not torch.cuda.is_available()", reason="needs a CUDA device")

# Tile configurations forced in the CPU tests (kernels._launch.use_tiles): the GPU's blocks,
# program counts and thresholds ("cuda"), and tiny tiles, so that every loop runs several
# iterations with a ragged last one and every multi-program path runs ("tiny").
FORCED_TILES = ["cuda", "tiny"]


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


# ------------------------------------------------------------ checks shared by CPU and GPU tests


def assert_penalty_bitwise_deterministic(batch: int, n: int, calls: int, device) -> None:
    """``calls`` forward + backward calls of the Triton penalty on one input give the same
    bits (the multi-program forward's ticketed sum included) and match the reference."""
    from gan_accel.kernels import gp_norm_penalty_forward, torch_gp_norm_penalty
    from gan_accel.kernels import triton_gp_norm_penalty as penalty

    g = (torch.randn(batch, n) / n**0.5).to(device)
    g[batch // 2] = 0  # a zero-norm row
    x = g.clone().requires_grad_()
    first = penalty(x)
    (d_first,) = torch.autograd.grad(first, x)
    _, norms_first = gp_norm_penalty_forward(g)
    for i in range(2, calls + 1):
        out = penalty(x)
        (dg,) = torch.autograd.grad(out, x)
        _, norms = gp_norm_penalty_forward(g)
        assert torch.equal(out, first), f"batch {batch}, call {i}: {out.item()} != {first.item()}"
        assert torch.equal(dg, d_first), "batch {batch}, call {i}: " + _describe("dg", dg, d_first)
        assert torch.equal(norms, norms_first), f"batch {batch}, call {i}: norms differ"
    assert_close(first, torch_gp_norm_penalty(g), rtol=1e-5, atol=1e-6, name=f"b{batch} penalty")


def seed_critic() -> torch.nn.Module:
    """The seed DCGAN D's four convolutions (ndf=16, no BN) on [B, 1, 28, 28]: weight
    matrices 32x16, 64x128, 128x1024 and the 1x2048 head."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 2, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
        nn.Conv2d(128, 1, 4, 1, 0, bias=False),
        nn.Flatten(),
    )


def assert_chained_training_matches_pytorch(make_critic, x_shape, calls: int, device,
                                            rtol: float, atol: float) -> None:
    """``calls`` chained training calls (forward in training mode, backward, SGD step) of one
    critic under PyTorch's spectral-norm parametrization and under the Triton one, from the
    same init: u, v and the weights match after every call."""
    import copy

    from gan_accel.kernels import spectral_norm
    from torch import nn
    from torch.nn.utils.parametrizations import spectral_norm as pt_spectral_norm

    def apply_sn(model, fn):
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                fn(m)
        return model

    torch.manual_seed(21)
    base = make_critic().to(device)
    torch.manual_seed(22)
    ref = apply_sn(copy.deepcopy(base), pt_spectral_norm)
    torch.manual_seed(22)
    ours = apply_sn(copy.deepcopy(base), lambda m: spectral_norm(m, impl="triton"))
    opts = [torch.optim.SGD(m.parameters(), lr=1e-2) for m in (ref, ours)]
    for call in range(1, calls + 1):
        x = torch.randn(x_shape, device=device)
        for model, opt in zip((ref, ours), opts, strict=True):
            loss = model(x).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        got = ours.state_dict()
        for k, val in ref.state_dict().items():
            assert_close(got[k], val, rtol=rtol, atol=atol, name=f"call {call} {k}")
