"""Fused WGAN-GP norm penalty (kernels/grad_penalty.py) against the PyTorch reference,
including the critic's double backward (eager, torch.func.grad, torch.compile)."""

from __future__ import annotations

import copy

import pytest
import torch
from _gan_kernels_testutils import TOL, assert_close, assert_within_ref_error, needs_interpreter
from gan_accel.kernels import (
    gp_norm_penalty,
    gp_norm_penalty_backward,
    gp_norm_penalty_forward,
    spectral_norm,
    torch_gp_norm_penalty,
    triton_gp_norm_penalty,
)
from torch import nn

# [B, ...]: tiny, odd, the MNIST-like critic input, 129x1023 (several programs -> the ticketed
# deterministic reduction), many short rows (several programs) and degenerate sizes.
SHAPES = [(1, 1), (7, 13), (64, 1, 28, 28), (129, 1023), (300, 4), (4, 1, 1), (5, 0)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]


def _grads(shape, dtype, zero_rows=True):
    g = torch.randn(shape, dtype=torch.float32)
    if g.ndim and g.numel():
        g = g * torch.rand(shape[0], *([1] * (g.ndim - 1))) * 2 / max(g[0].numel(), 1) ** 0.5
        if zero_rows and shape[0] > 2:
            g[1] = 0  # a zero-norm sample
    return g.to(dtype)


def _fwd_bwd(fn, g, grad_out):
    x = g.clone().requires_grad_()
    out = fn(x)
    out.backward(grad_out)
    return out.detach(), x.grad


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_matches_reference(shape, dtype):
    g = _grads(shape, dtype)
    grad_out = torch.tensor(1.7, dtype=dtype)
    ref, dref = _fwd_bwd(torch_gp_norm_penalty, g, grad_out)
    out, dout = _fwd_bwd(triton_gp_norm_penalty, g, grad_out)
    assert out.dtype == dtype and out.shape == ()
    tol = TOL[dtype]
    assert_close(out, ref, **tol, name="penalty")
    assert_close(dout, dref, rtol=tol["rtol"], atol=tol["atol"] * 10, name="dpenalty/dg")


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize(
    "shape", [(7, 13), (64, 1, 28, 28), (129, 1023)], ids=["7x13", "64x1x28x28", "129x1023"]
)
def test_low_precision(shape, dtype):
    """Interpreter supports fp16/bf16; kernel accumulates in fp32 and stores in g.dtype."""
    g = _grads(shape, dtype)
    grad_out = torch.tensor(1.0, dtype=dtype)
    ref32, dref32 = _fwd_bwd(torch_gp_norm_penalty, g.float(), grad_out.float())
    ref_lp, dref_lp = _fwd_bwd(torch_gp_norm_penalty, g, grad_out)
    out, dout = _fwd_bwd(triton_gp_norm_penalty, g, grad_out)
    assert out.dtype == dtype and dout.dtype == dtype
    assert_within_ref_error(out, ref_lp, ref32, name="pen")
    assert_within_ref_error(dout, dref_lp, dref32, name="dpenalty/dg")


@needs_interpreter
def test_zero_norm_rows_have_zero_gradient():
    g = torch.randn(4, 6)
    g[0] = 0
    g[2] = 0
    for fn in (torch_gp_norm_penalty, triton_gp_norm_penalty):
        _, dg = _fwd_bwd(fn, g, torch.tensor(1.0))
        assert torch.isfinite(dg).all(), f"{fn.__name__}: non-finite grad at a zero row"
        assert torch.equal(dg[0], torch.zeros(6)) and torch.equal(dg[2], torch.zeros(6))
    # the reference's 0 comes from vector_norm's subgradient at 0
    z = torch.zeros(3, requires_grad=True)
    torch.linalg.vector_norm(z).backward()
    assert torch.equal(z.grad, torch.zeros(3))


@needs_interpreter
def test_forward_is_deterministic_multi_program():
    g = _grads((129, 1023), torch.float32)
    first, norms = gp_norm_penalty_forward(g)
    for _ in range(3):
        again, norms2 = gp_norm_penalty_forward(g)
        assert torch.equal(first, again) and torch.equal(norms, norms2)
    assert_close(norms, torch.linalg.vector_norm(g, dim=1), **TOL[torch.float32], name="norms")


@needs_interpreter
def test_backward_launcher_with_norm_gradient():
    """The backward kernel's optional per-row term (used by higher-order autograd)."""
    g = torch.randn(5, 9)
    _, norms = gp_norm_penalty_forward(g)
    gp, gn = torch.tensor(0.7), torch.randn(5)
    got = gp_norm_penalty_backward(g, norms, gp, gn)
    n = torch.linalg.vector_norm(g, dim=1)
    expected = ((2 * gp * (n - 1) / 5 + gn) / n)[:, None] * g
    assert_close(got, expected, **TOL[torch.float32], name="dg")


@needs_interpreter
@pytest.mark.parametrize("impl", ["triton", "torch"])
def test_gradcheck_gradgradcheck_float64(impl):
    g = _grads((4, 5), torch.float64, zero_rows=False).requires_grad_()

    def fn(x):
        return gp_norm_penalty(x, impl=impl)

    assert torch.autograd.gradcheck(fn, (g,))
    assert torch.autograd.gradgradcheck(fn, (g,))


@needs_interpreter
def test_opcheck():
    g = _grads((6, 7), torch.float32, zero_rows=False).requires_grad_()
    torch.library.opcheck(torch.ops.gan_accel.gp_norm_penalty.default, (g,))
    norms = torch.linalg.vector_norm(g.detach(), dim=1).requires_grad_()
    gp = torch.tensor(1.3, requires_grad=True)
    op = torch.ops.gan_accel.gp_norm_penalty_backward.default
    torch.library.opcheck(op, (g, norms, gp, None))
    torch.library.opcheck(op, (g, norms, gp, torch.randn(6, requires_grad=True)))


@needs_interpreter
def test_composes_with_torch_func():
    # no zero rows: there the reference's second derivative is NaN (vector_norm's double
    # backward at 0), while the op defines it as 0
    g = _grads((5, 7), torch.float64, zero_rows=False)
    t = torch.randn(5, 7, dtype=torch.float64)
    for order in (1, 2):
        if order == 1:
            got = torch.func.grad(triton_gp_norm_penalty)(g)
            ref = torch.func.grad(torch_gp_norm_penalty)(g)
        else:  # Hessian-vector product through nested transforms
            got = torch.func.grad(lambda x: (torch.func.grad(triton_gp_norm_penalty)(x) * t).sum())(
                g
            )
            ref = torch.func.grad(lambda x: (torch.func.grad(torch_gp_norm_penalty)(x) * t).sum())(
                g
            )
        assert_close(got, ref, **TOL[torch.float64], name=f"order {order}")


# ------------------------------------------------------------- WGAN-GP: the critic's double bwd


def _critic(dtype=torch.float32):
    # smooth activations so the float64 gradcheck of params -> penalty is well posed
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, 2, 1),
        nn.Softplus(),
        nn.Conv2d(4, 8, 3, 2, 1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 1),
    ).to(dtype)


def _penalty_autograd(D, x_hat, impl):
    """Eager reference recipe: autograd.grad(create_graph=True)."""
    x_hat = x_hat.detach().requires_grad_()
    g = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)[0]
    return gp_norm_penalty(g, impl=impl) * 10


def _penalty_func(D, x_hat, impl):
    """The trainer's compiled recipe: torch.func.grad over functional_call."""
    params = dict(D.named_parameters())
    buffers = dict(D.named_buffers())

    def critic_sum(x):
        return torch.func.functional_call(D, {**params, **buffers}, (x,)).sum()

    g = torch.func.grad(critic_sum)(x_hat)
    return gp_norm_penalty(g, impl=impl) * 10


def _param_grads(D, loss):
    D.zero_grad(set_to_none=True)
    loss.backward()
    return {k: p.grad.clone() for k, p in D.named_parameters() if p.grad is not None}


def _assert_grads_match(got, ref, tol, what):
    assert set(got) == set(ref), f"{what}: params with grads differ: {set(got) ^ set(ref)}"
    for k in ref:
        assert_close(got[k], ref[k], **tol, name=f"{what} d/d{k}")


def _x_hat(batch=6):
    real, fake = torch.randn(batch, 1, 8, 8), torch.randn(batch, 1, 8, 8)
    alpha = torch.rand(batch, 1, 1, 1)
    return alpha * real + (1 - alpha) * fake


@needs_interpreter
def test_wgan_gp_param_grads_eager():
    D = _critic()
    x_hat = _x_hat()
    ref = _param_grads(D, _penalty_autograd(D, x_hat, "torch"))
    tol = dict(rtol=1e-5, atol=1e-6)
    _assert_grads_match(
        _param_grads(D, _penalty_autograd(D, x_hat, "triton")), ref, tol, "autograd.grad triton"
    )
    _assert_grads_match(
        _param_grads(D, _penalty_func(D, x_hat, "triton")), ref, tol, "func.grad triton"
    )


@needs_interpreter
def test_wgan_gp_gradcheck_params_float64():
    """gradcheck of params -> penalty: exercises the critic's double backward through the op."""
    D = _critic(torch.float64)
    x_hat = _x_hat(3).double()
    names = [k for k, _ in D.named_parameters()]
    params0 = tuple(p.detach().clone().requires_grad_() for p in D.parameters())

    def fn(*params):
        p = dict(zip(names, params, strict=True))
        x = x_hat.clone().requires_grad_()
        out = torch.func.functional_call(D, p, (x,)).sum()
        g = torch.autograd.grad(out, x, create_graph=True)[0]
        return gp_norm_penalty(g, impl="triton")

    assert torch.autograd.gradcheck(fn, params0, fast_mode=True)


@needs_interpreter
@pytest.mark.parametrize("impl", ["triton", "torch"])
def test_wgan_gp_compiled_func_grad_matches_eager(impl):
    """torch.compile(fullgraph=True) of the torch.func.grad penalty (no graph break), then
    loss.backward() into D's params: equal to the eager autograd.grad reference."""
    D = _critic()
    x_hat = _x_hat()
    ref = _param_grads(D, _penalty_autograd(D, x_hat, "torch"))
    compiled = torch.compile(_penalty_func, fullgraph=True)
    loss = compiled(D, x_hat, impl)
    assert_close(
        loss.detach(),
        _penalty_autograd(D, x_hat, "torch").detach(),
        rtol=1e-5,
        atol=1e-6,
        name="penalty",
    )
    _assert_grads_match(_param_grads(D, loss), ref, dict(rtol=1e-4, atol=1e-5), f"compiled {impl}")


@needs_interpreter
def test_wgan_gp_with_spectral_norm_critic():
    """Both kernels together: a spectrally normalised critic (Triton SN, buffers updated in
    place) inside torch.func.grad, penalty via Triton; equal to the all-torch path."""
    torch.manual_seed(11)
    base = _critic()
    x_hat = _x_hat()
    grads = {}
    for impl in ("triton", "torch"):
        torch.manual_seed(12)
        D = copy.deepcopy(base)
        for m in D.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                spectral_norm(m, impl=impl)
        grads[impl] = _param_grads(D, _penalty_func(D, x_hat, impl))
        grads[impl + "_buffers"] = {k: b.clone() for k, b in D.named_buffers()}
    _assert_grads_match(grads["triton"], grads["torch"], dict(rtol=1e-4, atol=1e-5), "SN+GP")
    for k, b in grads["torch_buffers"].items():
        assert_close(grads["triton_buffers"][k], b, rtol=1e-5, atol=1e-6, name=k)
