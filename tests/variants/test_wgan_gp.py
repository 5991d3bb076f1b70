"""WGAN-GP: the torch.func gradient penalty equals the autograd double-backward reference."""

import dataclasses

import pytest
import torch

from gan_accel.ops import TORCH_OPS
from gan_accel.variants import Batch, build_variant, recipe_config


def make(ops=TORCH_OPS, **overrides):
    torch.manual_seed(0)
    return build_variant(recipe_config("wgan-gp", **overrides), ops)


def reference_penalty(D, real, fake, eps):
    """The textbook penalty: autograd.grad(create_graph=True), then mean (||g|| - 1)^2."""
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return (g.flatten(1).norm(dim=1) - 1).square().mean()


def _inputs(n=6, seed=1):
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 1, 28, 28, generator=gen)
    fake = torch.rand(n, 1, 28, 28, generator=gen)
    eps = torch.rand(n, 1, 1, 1, generator=gen)
    return real, fake, eps


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_func_grad_penalty_matches_autograd_value_and_weight_gradients(spectral_norm):
    """Tolerance: rtol 1e-5 / atol 1e-7 (same float32 math, different op order)."""
    v = make(spectral_norm=spectral_norm).eval()  # eval: SN does not move u, v between calls
    real, fake, eps = _inputs()
    ours = v.gradient_penalty(real, fake, eps)
    grads_ours = torch.autograd.grad(ours, list(v.D.parameters()))
    ref = reference_penalty(v.D, real, fake, eps)
    grads_ref = torch.autograd.grad(ref, list(v.D.parameters()))
    assert float(ref.detach()) > 1e-3  # a penalty that is not trivially 0
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-7)
    names = [n for n, _ in v.D.named_parameters()]
    for name, a, b in zip(names, grads_ours, grads_ref, strict=True):
        assert float(b.abs().max()) > 0, name
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_input_gradient_is_per_sample():
    v = make().eval()
    real, _, _ = _inputs(n=4)
    g = v.input_gradient(real)
    assert g.shape == real.shape
    for i in range(4):  # row i is the gradient of D(x_i) alone
        x = real[i:i + 1].clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(v.D(x).sum(), x)
        torch.testing.assert_close(g[i:i + 1], gi, rtol=1e-5, atol=1e-7)


def test_penalty_goes_through_the_injected_ops_and_eps_is_per_sample():
    seen = []

    def recording_penalty(g):
        seen.append(g.shape)
        return TORCH_OPS.gp_norm_penalty(g)

    v = make(dataclasses.replace(TORCH_OPS, name="rec", gp_norm_penalty=recording_penalty))
    eps_shapes = []
    inner = v.gradient_penalty

    def spy(real, fake, eps, see=None):
        eps_shapes.append(eps.shape)
        return inner(real, fake, eps, see)

    v.gradient_penalty = spy
    real, _, _ = _inputs(n=5)
    lat = v.latent.sample(5, "cpu", torch.Generator().manual_seed(0))
    loss, logs = v.d_loss(Batch(real, torch.zeros(5, dtype=torch.long), lat))
    assert seen == [torch.Size([5, 1, 28, 28])]
    assert eps_shapes == [torch.Size([5, 1, 1, 1])]  # one mixing weight per sample
    expected = -logs["w_dist"] + 10.0 * logs["gp"]
    torch.testing.assert_close(loss.detach(), expected)
    assert float(logs["gp"]) > 0


def test_reference_recipe_follows_the_paper():
    cfg = recipe_config("wgan-gp", "paper")
    assert (cfg.gp_lambda, cfg.n_critic, cfg.lr_d, cfg.lr_g) == (10.0, 5, 1e-4, 1e-4)
    assert (cfg.beta1, cfg.beta2, cfg.optimizer) == (0.0, 0.9, "adam")
    assert (cfg.d_batch_norm, cfg.spectral_norm) == (False, False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in make().D.modules())


def test_penalty_with_the_fused_triton_ops_matches_torch_ops():
    """The same func.grad path through the Triton GP-norm and SN kernels (interpreted on CPU)
    gives the TORCH_OPS penalty and weight gradients (rtol 1e-4 / atol 1e-6)."""
    from gan_accel.ops import build_ops

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    triton_ops = build_ops("triton", device)
    out = {}
    for name, ops in (("torch", TORCH_OPS), ("triton", triton_ops)):
        v = make(ops, spectral_norm=True).to(device)
        real, fake, eps = (t.to(device) for t in _inputs(n=4))
        gp = v.gradient_penalty(real, fake, eps)
        out[name] = (gp.detach(), torch.autograd.grad(gp, list(v.D.parameters())))
    torch.testing.assert_close(out["triton"][0], out["torch"][0], rtol=1e-4, atol=1e-6)
    for a, b in zip(out["triton"][1], out["torch"][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
