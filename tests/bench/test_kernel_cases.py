"""bench kernels measures the discriminators the toolkit trains: the seed D's weights, the
largest spectral-norm weights of the 64x64 Ds and the gradient penalty on colour batches."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from gan_accel.bench.kernels_bench import _cases

from gan_accel.models.arch import Arch
from gan_accel.models.builders import NetShape, discriminator_trunk


def shapes(quick: bool, op: str) -> set[tuple[int, int]]:
    ctx = SimpleNamespace(quick=quick, device=torch.device("cpu"))
    return {shape for o, shape, _, _ in _cases(ctx, sweep=False) if o == op}


def largest_weight(arch: Arch, side: int) -> tuple[int, int]:
    """[out, in * k * k] of the largest weight of ``arch``'s 3-channel D at paper width."""
    width = arch.width
    trunk, _, _ = discriminator_trunk(NetShape(arch, 3, side, width, width), None, False)
    w = max((p for p in trunk.parameters() if p.dim() > 1), key=lambda p: p.numel())
    return (w.shape[0], w[0].numel())


def test_the_64px_discriminators_and_colour_penalties_have_rows():
    assert largest_weight(Arch.DCGAN, 64) == (512, 4096)  # the 512x256x4x4 conv
    assert largest_weight(Arch.RESNET, 64) == (1024, 4608)  # the 1024x512x3x3 conv
    for quick in (False, True):
        assert (512, 4096) in shapes(quick, "spectral_norm")
        assert (64, 12288) in shapes(quick, "gp_norm")  # batch 64 of 3x64x64
    assert {(1024, 4608), (64, 784), (64, 3072)} <= (shapes(False, "spectral_norm")
                                                     | shapes(False, "gp_norm"))
