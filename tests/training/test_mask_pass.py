"""On CPU the compiled step saves no bool masks for ReLU / LeakyReLU, and gets the same
numbers as eager: the masks are float factors (gan_accel.training.mask_pass)."""

import pytest
import torch
import torch.nn.functional as F

from gan_accel.training.trainer import compile_options


def net(x, w):
    """ReLU then LeakyReLU: both backward selects, and LeakyReLU's forward one. ReLU's output
    is exactly 0 wherever its input was negative, so its backward compares zeros with 0."""
    return F.leaky_relu(torch.relu(x @ w) @ w.t() - 0.5, 0.2).square().sum()


def saved_dtypes(fn, *args):
    dtypes = []

    def pack(t):
        dtypes.append(t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    return out, dtypes


@pytest.mark.slow  # one Inductor compile of a forward and a backward: ~8 s
def test_compiled_activations_save_floats_and_match_eager():
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 48, generator=gen)
    w = torch.randn(48, 48, generator=gen)
    x_eager, x_comp = x.clone().requires_grad_(), x.clone().requires_grad_()

    def fn(x):
        return net(x, w)

    compiled = torch.compile(fn, fullgraph=True, options=compile_options(
        "default", torch.device("cpu")))
    eager_out = fn(x_eager)
    eager_out.backward()
    comp_out, dtypes = saved_dtypes(compiled, x_comp)
    comp_out.backward()
    assert torch.bool not in dtypes, dtypes
    torch.testing.assert_close(comp_out, eager_out, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(x_comp.grad, x_eager.grad, rtol=1e-5, atol=1e-5)
