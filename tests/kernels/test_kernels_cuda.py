"""CUDA-only: the compiled kernels against PyTorch on a real GPU (skipped without CUDA; the
device is only queried when a test runs). The other kernel test files run on CUDA too there;
this one adds what only a GPU can show: cuBLAS-computed references at larger shapes, bitwise
determinism of the penalty over 200 calls (its multi-program reduction races for real there),
and 100 chained training calls against PyTorch's spectral norm, on both kernel paths."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from _gan_kernels_testutils import (
    assert_chained_training_matches_pytorch,
    assert_close,
    assert_penalty_bitwise_deterministic,
    assert_within_ref_error,
    needs_cuda,
    seed_critic,
)
from gan_accel.kernels import (
    gp_norm_penalty,
    resolve_impl,
    spectral_norm,
    torch_gp_norm_penalty,
    torch_spectral_norm,
    triton_gp_norm_penalty,
    triton_spectral_norm,
)
from gan_accel.kernels._launch import TILE_CONFIGS, Tiles, use_tiles
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as pt_spectral_norm

pytestmark = [pytest.mark.gpu, needs_cuda]
# (conftest.py's autouse fixture turns TF32 off and cuDNN deterministic for every kernel test)


SN_SHAPES = [
    ((1, 1), 0),
    ((7, 13), 0),
    ((32, 1, 4, 4), 0),
    ((64, 32, 2, 2), 0),
    ((128, 64, 4, 4), 0),
    ((1, 128, 4, 4), 0),
    ((10, 2048), 0),
    ((2, 2048), 0),
    ((129, 1023), 0),
    ((512, 256, 3, 3), 0),
    ((16, 8, 4, 4), 1),
    ((256, 128, 4, 4), 1),
]
SN_IDS = [f"{'x'.join(map(str, s))}-dim{d}" for s, d in SN_SHAPES]
GP_SHAPES = [(1, 1), (7, 13), (64, 1, 28, 28), (129, 1023), (256, 3, 64, 64), (4096, 16)]
GP_IDS = ["x".join(map(str, s)) for s in GP_SHAPES]


def _sn_inputs(shape, dim, dtype=torch.float32):
    w = torch.randn(shape, device="cuda")
    w_mat = w.movedim(dim, 0).flatten(1)
    u = F.normalize(torch.randn(w_mat.shape[0], device="cuda"), dim=0)
    v = F.normalize(torch.randn(w_mat.shape[1], device="cuda"), dim=0)
    for _ in range(15):
        u = F.normalize(w_mat @ v, dim=0)
        v = F.normalize(w_mat.t() @ u, dim=0)
    return w.to(dtype), u.to(dtype), v.to(dtype)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("shape", "dim"), SN_SHAPES, ids=SN_IDS)
def test_spectral_norm_cuda_fp32(shape, dim, training):
    w, u, v = _sn_inputs(shape, dim)
    grad = torch.randn_like(w)
    w_ref, w_tri = w.clone().requires_grad_(), w.clone().requires_grad_()
    u_ref, v_ref, u_tri, v_tri = u.clone(), v.clone(), u.clone(), v.clone()
    ref = torch_spectral_norm(w_ref, u_ref, v_ref, 1, 1e-12, dim, training)
    out = triton_spectral_norm(w_tri, u_tri, v_tri, 1, 1e-12, dim, training)
    scale = float(ref.detach().abs().max())
    # cuBLAS sums in a different order: relative tolerances
    assert_close(out, ref, rtol=1e-4, atol=1e-5 * scale, name="W/sigma")
    assert_close(u_tri, u_ref, rtol=1e-4, atol=1e-5, name="u")
    assert_close(v_tri, v_ref, rtol=1e-4, atol=1e-5, name="v")
    ref.backward(grad)
    out.backward(grad)
    # slack relative to the cancelling terms |G|/sigma (dW is exactly 0 for a 1x1 weight)
    term = float(grad.abs().max()) * scale / float(w.abs().max())
    gscale = max(float(w_ref.grad.abs().max()), term)
    assert_close(w_tri.grad, w_ref.grad, rtol=1e-4, atol=1e-5 * gscale, name="dW")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize(
    ("shape", "dim"),
    [SN_SHAPES[3], SN_SHAPES[8], SN_SHAPES[11]],
    ids=[SN_IDS[3], SN_IDS[8], SN_IDS[11]],
)
def test_spectral_norm_cuda_low_precision(shape, dim, dtype):
    w, u, v = _sn_inputs(shape, dim, dtype)
    ref32 = torch_spectral_norm(w.float(), u.float(), v.float(), 1, 1e-12, dim, True)
    ref_lp = torch_spectral_norm(w, u.clone(), v.clone(), 1, 1e-12, dim, True)
    out = triton_spectral_norm(w, u.clone(), v.clone(), 1, 1e-12, dim, True)
    assert_within_ref_error(out, ref_lp, ref32, name="W")


def _critic():
    return nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 3, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(128 * 4 * 4, 1),
    ).cuda()


def _sn_all(model, fn):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            fn(m)
    return model


def _step(model, opt, real, fake, alpha, call=None):
    call = call or model
    x_hat = alpha * real + (1 - alpha) * fake
    loss = call(fake).mean() - call(real).mean() + 0.1 * call(x_hat).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_spectral_norm_module_cuda_matches_pytorch(compiled):
    torch.manual_seed(1)
    base = _critic()
    torch.manual_seed(2)
    ref = _sn_all(copy.deepcopy(base), pt_spectral_norm)
    torch.manual_seed(2)
    ours = _sn_all(copy.deepcopy(base), lambda m: spectral_norm(m, impl="auto"))
    call = torch.compile(ours, fullgraph=True) if compiled else ours
    opt_r = torch.optim.SGD(ref.parameters(), lr=1e-2)
    opt_o = torch.optim.SGD(ours.parameters(), lr=1e-2)
    for _ in range(3):
        real, fake = (
            torch.randn(8, 1, 28, 28, device="cuda"),
            torch.randn(8, 1, 28, 28, device="cuda"),
        )
        alpha = torch.rand(8, 1, 1, 1, device="cuda")
        _step(ref, opt_r, real, fake, alpha)
        _step(ours, opt_o, real, fake, alpha, call=call)
    for k, val in ref.state_dict().items():
        assert_close(ours.state_dict()[k], val, rtol=1e-4, atol=1e-5, name=k)


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"]
)
@pytest.mark.parametrize("shape", GP_SHAPES, ids=GP_IDS)
def test_gp_norm_penalty_cuda(shape, dtype):
    g = torch.randn(shape, device="cuda") / max(torch.Size(shape[1:]).numel(), 1) ** 0.5
    if shape[0] > 2:
        g[1] = 0
    g = g.to(dtype)
    grad_out = torch.tensor(1.3, device="cuda", dtype=dtype)
    x_ref, x_tri = g.clone().requires_grad_(), g.clone().requires_grad_()
    ref, out = torch_gp_norm_penalty(x_ref), triton_gp_norm_penalty(x_tri)
    ref.backward(grad_out)
    out.backward(grad_out)
    if dtype == torch.float32:
        assert_close(out, ref, rtol=1e-5, atol=1e-6, name="penalty")
        assert_close(x_tri.grad, x_ref.grad, rtol=1e-4, atol=1e-7, name="dg")
    else:
        x32 = g.float().requires_grad_()
        ref32 = torch_gp_norm_penalty(x32)
        ref32.backward(grad_out.float())
        assert_within_ref_error(out, ref, ref32, name="pen")
        assert_within_ref_error(x_tri.grad, x_ref.grad, x32.grad, name="dg")
    # deterministic, including the multi-program (ticketed) reduction
    assert torch.equal(triton_gp_norm_penalty(g), triton_gp_norm_penalty(g))


def test_auto_picks_triton_on_cuda():
    assert resolve_impl("auto", torch.zeros(1, device="cuda"), "cuda_test_op") == "triton"


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_wgan_gp_param_grads_cuda(compiled):
    D = _critic()
    real, fake = (
        torch.randn(16, 1, 28, 28, device="cuda"),
        torch.randn(16, 1, 28, 28, device="cuda"),
    )
    alpha = torch.rand(16, 1, 1, 1, device="cuda")
    x_hat = alpha * real + (1 - alpha) * fake

    def penalty_func(D, x_hat, impl):
        params, buffers = dict(D.named_parameters()), dict(D.named_buffers())
        g = torch.func.grad(
            lambda x: torch.func.functional_call(D, {**params, **buffers}, (x,)).sum()
        )(x_hat)
        return gp_norm_penalty(g, impl=impl) * 10

    x = x_hat.clone().requires_grad_()
    g = torch.autograd.grad(D(x).sum(), x, create_graph=True)[0]
    D.zero_grad(set_to_none=True)
    (torch_gp_norm_penalty(g) * 10).backward()
    ref = {k: p.grad.clone() for k, p in D.named_parameters() if p.grad is not None}
    fn = torch.compile(penalty_func, fullgraph=True) if compiled else penalty_func
    D.zero_grad(set_to_none=True)
    fn(D, x_hat, "triton").backward()
    for k, val in ref.items():
        got = dict(D.named_parameters())[k].grad
        assert_close(got, val, rtol=1e-3, atol=1e-5 * float(val.abs().max()), name=k)


@pytest.mark.parametrize("batch", [3, 64, 65, 4095, 4096])
def test_gp_norm_penalty_bitwise_deterministic_200_calls(batch):
    """Forward and backward, 200 calls each, at the seed's 28x28: one program up to batch 64,
    ticketed multi-program reductions from 65 on (4095: a ragged last program)."""
    assert_penalty_bitwise_deterministic(batch, 784, 200, "cuda")


@pytest.mark.parametrize("path", ["auto", "several-programs"])
def test_spectral_norm_100_chained_training_calls_match_pytorch(path):
    """The seed D (32x16, 64x128, 128x1024, 1x2048), batch 64: 100 training calls (forward,
    backward, SGD step), u / v / weights compared with PyTorch's parametrization after each.
    ``several-programs`` forces the multi-program kernels onto these small matrices."""
    config = TILE_CONFIGS[Tiles.CUDA]
    if path == "several-programs":
        config = dataclasses.replace(config, sn_multi_min=1)
    with use_tiles(config):
        assert_chained_training_matches_pytorch(seed_critic, (64, 1, 28, 28), 100, "cuda",
                                                rtol=1e-4, atol=1e-5)
