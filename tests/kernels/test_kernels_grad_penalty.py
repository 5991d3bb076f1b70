"""Fused WGAN-GP norm penalty (kernels/grad_penalty.py) against the PyTorch reference,
including the critic's double backward (eager, torch.func.grad, torch.compile).

Runs the interpreter on CPU tensors, or the compiled kernels on CUDA tensors (``dev``)."""

from __future__ import annotations

import copy

import pytest
import torch
from _gan_kernels_testutils import (
    FORCED_TILES,
    TOL,
    assert_close,
    assert_penalty_bitwise_deterministic,
    assert_within_ref_error,
    needs_triton,
)
from gan_accel.kernels import (
    gp_norm_penalty,
    gp_norm_penalty_backward,
    gp_norm_penalty_forward,
    spectral_norm,
    torch_gp_norm_penalty,
    triton_gp_norm_penalty,
)
from gan_accel.kernels._launch import tile_config, use_tiles
from gan_accel.kernels.grad_penalty import _fwd_config
from torch import nn

# [B, ...]: tiny, odd, the MNIST-like critic input, 129x1023 (several programs -> the ticketed
# deterministic reduction), many short rows (several programs) and degenerate sizes.
SHAPES = [(1, 1), (7, 13), (64, 1, 28, 28), (129, 1023), (300, 4), (4, 1, 1), (5, 0)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]

# Under the forced tile configurations: one program (single), several (ticketed), a whole row
# per block and a column loop with a ragged tail, a partial-sum loop of several blocks.
# cuda: 64x784 one program of 8 row blocks; 65x1025 65 programs x 1 row, 2 partial blocks;
# 3x5000 one program with a column loop; 17x4100 17 programs with column loops. tiny: 5x7 /
# 3x12 one program (row loop; column loop), 37x5 / 7x13 several programs (19 of them: 10
# partial blocks; column loops).
FORCED_SHAPES = {
    "cuda": [(64, 1, 28, 28), (65, 1025), (3, 5000), (17, 4100)],
    "tiny": [(1, 1), (5, 7), (3, 12), (37, 5), (7, 13)],
}
FORCED_CASES = [(t, s) for t in FORCED_TILES for s in FORCED_SHAPES[t]]
FORCED_IDS = [f"{t}-{'x'.join(map(str, s))}" for t, s in FORCED_CASES]


def _grads(shape, dtype, device, zero_rows=True):
    g = torch.randn(shape, dtype=torch.float32)
    if g.ndim and g.numel():
        g = g * torch.rand(shape[0], *([1] * (g.ndim - 1))) * 2 / max(g[0].numel(), 1) ** 0.5
        if zero_rows and shape[0] > 2:
            g[1] = 0  # a zero-norm sample
    return g.to(device=device, dtype=dtype)


def _fwd_bwd(fn, g, grad_out):
    x = g.clone().requires_grad_()
    out = fn(x)
    out.backward(grad_out)
    return out.detach(), x.grad


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_matches_reference(shape, dtype, dev):
    g = _grads(shape, dtype, dev)
    grad_out = torch.tensor(1.7, dtype=dtype, device=dev)
    ref, dref = _fwd_bwd(torch_gp_norm_penalty, g, grad_out)
    out, dout = _fwd_bwd(triton_gp_norm_penalty, g, grad_out)
    assert out.dtype == dtype and out.shape == ()
    tol = TOL[dtype]
    assert_close(out, ref, **tol, name="penalty")
    assert_close(dout, dref, rtol=tol["rtol"], atol=tol["atol"] * 10, name="dpenalty/dg")


@needs_triton
@pytest.mark.parametrize(("tiles", "shape"), FORCED_CASES, ids=FORCED_IDS)
def test_forced_tile_configs_match_reference(tiles, shape, dev):
    """The GPU's tile configuration and tiny tiles: one program and several, full-row blocks
    and column loops with ragged tails, several blocks of partial sums."""
    g = _grads(shape, torch.float32, dev)
    grad_out = torch.tensor(0.9, device=dev)
    ref, dref = _fwd_bwd(torch_gp_norm_penalty, g, grad_out)
    with use_tiles(tiles):
        out, dout = _fwd_bwd(triton_gp_norm_penalty, g, grad_out)
        again, norms = gp_norm_penalty_forward(g)
    assert_close(out, ref, **TOL[torch.float32], name=f"{tiles} penalty")
    assert_close(dout, dref, rtol=2e-5, atol=2e-5, name=f"{tiles} dpenalty/dg")
    assert torch.equal(again, out), f"{tiles}: two calls differ ({float(again)} vs {float(out)})"
    n = torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1)
    assert_close(norms, n, **TOL[torch.float32], name=f"{tiles} norms")


def test_forced_tile_shapes_cover_every_forward_path():
    """FORCED_SHAPES runs one program and several, each with whole rows per block and with a
    column loop, in each configuration."""
    for tiles in FORCED_TILES:
        with use_tiles(tiles):
            cfg = tile_config(torch.device("cpu"))
            paths = set()
            for shape in FORCED_SHAPES[tiles]:
                b, n = shape[0], torch.Size(shape[1:]).numel()
                _, block_n, single = _fwd_config(b, n, cfg)
                paths.add(("one program" if single else "several", n <= block_n))
        assert len(paths) == 4, (tiles, sorted(paths))


@needs_triton
@pytest.mark.parametrize("batch", [5, 64], ids=["b5-tiny-tiles", "b64"])
def test_expanded_batch_stride_zero(batch, dev):
    """One gradient broadcast over the batch (row stride 0): every row is that gradient. The
    launcher used to turn stride 0 into 1, reading shifted, out-of-bounds rows (inf / NaN)."""
    base = (torch.randn(1, 1, 28, 28) * 0.03).to(dev)
    tiles = "tiny" if batch == 5 else "cuda"
    x_ref, x_tri = base.clone().requires_grad_(), base.clone().requires_grad_()
    g_ref, g_tri = x_ref.expand(batch, 1, 28, 28), x_tri.expand(batch, 1, 28, 28)
    assert g_tri.reshape(batch, -1).stride(0) == 0
    ref = torch_gp_norm_penalty(g_ref)
    with use_tiles(tiles):
        out = triton_gp_norm_penalty(g_tri)
        _, norms = gp_norm_penalty_forward(g_tri)
        out.backward()
    ref.backward()
    assert torch.isfinite(norms).all(), f"non-finite norms: {norms}"
    assert_close(norms, torch.linalg.vector_norm(base).expand(batch), **TOL[torch.float32],
                 name="norms")
    assert_close(out, ref, **TOL[torch.float32], name="penalty")
    assert_close(x_tri.grad, x_ref.grad, rtol=2e-5, atol=2e-6, name="d/dbase")


@needs_triton
def test_strided_rows_without_copy(dev):
    """Rows that are slices of wider rows (row stride > N) and a transposed batch."""
    wide = _grads((9, 40), torch.float32, dev)
    for g in (wide[:, 3:30], wide.t().contiguous().t()[:, :17]):
        ref, dref = _fwd_bwd(torch_gp_norm_penalty, g, torch.tensor(1.0, device=dev))
        out, dout = _fwd_bwd(triton_gp_norm_penalty, g, torch.tensor(1.0, device=dev))
        assert_close(out, ref, **TOL[torch.float32], name=f"penalty strides {g.stride()}")
        assert_close(dout, dref, rtol=2e-5, atol=2e-5, name=f"dg strides {g.stride()}")


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize(
    "shape", [(7, 13), (64, 1, 28, 28), (129, 1023)], ids=["7x13", "64x1x28x28", "129x1023"]
)
def test_low_precision(shape, dtype, dev):
    """The kernel accumulates in fp32 and stores in g.dtype."""
    g = _grads(shape, dtype, dev)
    grad_out = torch.tensor(1.0, dtype=dtype, device=dev)
    ref32, dref32 = _fwd_bwd(torch_gp_norm_penalty, g.float(), grad_out.float())
    ref_lp, dref_lp = _fwd_bwd(torch_gp_norm_penalty, g, grad_out)
    out, dout = _fwd_bwd(triton_gp_norm_penalty, g, grad_out)
    assert out.dtype == dtype and dout.dtype == dtype
    assert_within_ref_error(out, ref_lp, ref32, name="pen")
    assert_within_ref_error(dout, dref_lp, dref32, name="dpenalty/dg")


@needs_triton
def test_zero_norm_rows_have_zero_gradient(dev):
    g = torch.randn(4, 6, device=dev)
    g[0] = 0
    g[2] = 0
    zero = torch.zeros(6, device=dev)
    for fn in (torch_gp_norm_penalty, triton_gp_norm_penalty):
        _, dg = _fwd_bwd(fn, g, torch.tensor(1.0, device=dev))
        assert torch.isfinite(dg).all(), f"{fn.__name__}: non-finite grad at a zero row"
        assert torch.equal(dg[0], zero) and torch.equal(dg[2], zero)
    # the reference's 0 comes from vector_norm's subgradient at 0
    z = torch.zeros(3, requires_grad=True)
    torch.linalg.vector_norm(z).backward()
    assert torch.equal(z.grad, torch.zeros(3))


@needs_triton
@pytest.mark.parametrize("batch", [3, 37], ids=["single", "several"])
def test_forward_is_deterministic_tiny_tiles(batch, dev):
    """The determinism check of the GPU tests (test_kernels_cuda.py: 200 calls at batch
    3 .. 4096), here with tiny tiles: one program, and 19 programs whose partials are added
    by the last one (in program order, whatever order they finish in)."""
    with use_tiles("tiny"):
        assert_penalty_bitwise_deterministic(batch, 5, 3, dev)


@needs_triton
def test_forward_is_deterministic_multi_program(dev):
    g = _grads((129, 1023), torch.float32, dev)
    first, norms = gp_norm_penalty_forward(g)
    for _ in range(3):
        again, norms2 = gp_norm_penalty_forward(g)
        assert torch.equal(first, again) and torch.equal(norms, norms2)
    assert_close(norms, torch.linalg.vector_norm(g, dim=1), **TOL[torch.float32], name="norms")


@needs_triton
def test_backward_launcher_with_norm_gradient(dev):
    """The backward kernel's optional per-row term (used by higher-order autograd)."""
    g = torch.randn(5, 9, device=dev)
    _, norms = gp_norm_penalty_forward(g)
    gp, gn = torch.tensor(0.7, device=dev), torch.randn(5, device=dev)
    got = gp_norm_penalty_backward(g, norms, gp, gn)
    n = torch.linalg.vector_norm(g, dim=1)
    expected = ((2 * gp * (n - 1) / 5 + gn) / n)[:, None] * g
    assert_close(got, expected, **TOL[torch.float32], name="dg")


@needs_triton
@pytest.mark.parametrize("impl", ["triton", "torch"])
def test_gradcheck_gradgradcheck_float64(impl, dev):
    g = _grads((4, 5), torch.float64, dev, zero_rows=False).requires_grad_()

    def fn(x):
        return gp_norm_penalty(x, impl=impl)

    assert torch.autograd.gradcheck(fn, (g,))
    assert torch.autograd.gradgradcheck(fn, (g,))


@needs_triton
def test_opcheck(dev):
    g = _grads((6, 7), torch.float32, dev, zero_rows=False).requires_grad_()
    torch.library.opcheck(torch.ops.gan_accel.gp_norm_penalty.default, (g,))
    norms = torch.linalg.vector_norm(g.detach(), dim=1).requires_grad_()
    gp = torch.tensor(1.3, requires_grad=True, device=dev)
    op = torch.ops.gan_accel.gp_norm_penalty_backward.default
    torch.library.opcheck(op, (g, norms, gp, None))
    torch.library.opcheck(op, (g, norms, gp, torch.randn(6, requires_grad=True, device=dev)))


@needs_triton
def test_composes_with_torch_func(dev):
    # no zero rows: there the reference's second derivative is NaN (vector_norm's double
    # backward at 0), while the op defines it as 0
    g = _grads((5, 7), torch.float64, dev, zero_rows=False)
    t = torch.randn(5, 7, dtype=torch.float64, device=dev)
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


def _critic(device, dtype=torch.float32):
    # smooth activations so the float64 gradcheck of params -> penalty is well posed
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, 2, 1),
        nn.Softplus(),
        nn.Conv2d(4, 8, 3, 2, 1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 1),
    ).to(device=device, dtype=dtype)


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


def _x_hat(device, batch=6):
    real, fake = torch.randn(batch, 1, 8, 8), torch.randn(batch, 1, 8, 8)
    alpha = torch.rand(batch, 1, 1, 1)
    return (alpha * real + (1 - alpha) * fake).to(device)


@needs_triton
def test_wgan_gp_param_grads_eager(dev):
    D = _critic(dev)
    x_hat = _x_hat(dev)
    ref = _param_grads(D, _penalty_autograd(D, x_hat, "torch"))
    tol = dict(rtol=1e-5, atol=1e-6)
    _assert_grads_match(
        _param_grads(D, _penalty_autograd(D, x_hat, "triton")), ref, tol, "autograd.grad triton"
    )
    _assert_grads_match(
        _param_grads(D, _penalty_func(D, x_hat, "triton")), ref, tol, "func.grad triton"
    )


@needs_triton
def test_wgan_gp_gradcheck_params_float64(dev):
    """gradcheck of params -> penalty: exercises the critic's double backward through the op."""
    D = _critic(dev, torch.float64)
    x_hat = _x_hat(dev, 3).double()
    names = [k for k, _ in D.named_parameters()]
    params0 = tuple(p.detach().clone().requires_grad_() for p in D.parameters())

    def fn(*params):
        p = dict(zip(names, params, strict=True))
        x = x_hat.clone().requires_grad_()
        out = torch.func.functional_call(D, p, (x,)).sum()
        g = torch.autograd.grad(out, x, create_graph=True)[0]
        return gp_norm_penalty(g, impl="triton")

    assert torch.autograd.gradcheck(fn, params0, fast_mode=True)


@needs_triton
@pytest.mark.slow  # compiles the penalty's double backward: 38 s with empty caches
@pytest.mark.parametrize("impl", ["triton", "torch"])
def test_wgan_gp_compiled_func_grad_matches_eager(impl, dev):
    """torch.compile(fullgraph=True) of the torch.func.grad penalty (no graph break), then
    loss.backward() into D's params: equal to the eager autograd.grad reference."""
    D = _critic(dev)
    x_hat = _x_hat(dev)
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


@needs_triton
def test_wgan_gp_with_spectral_norm_critic(dev):
    """Both kernels together: a spectrally normalised critic (Triton SN, buffers updated in
    place) inside torch.func.grad, penalty via Triton; equal to the all-torch path."""
    torch.manual_seed(11)
    base = _critic(dev)
    x_hat = _x_hat(dev)
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
