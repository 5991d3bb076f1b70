"""DCGAN as in Radford et al. 2016: the 64x64 nets and their 32x32 form.

G: a 1x1 latent through a 4x4 transposed conv, then stride-2 transposed convs halving the
width and doubling the side up to the image (BN + ReLU between, no biases); D mirrors it
with stride-2 convs (LeakyReLU 0.2, BN after every conv but the first, no biases) down to
``4x4``, and a 4x4 conv to one logit, written here as a linear layer on the flattened
``[B, F]`` features (the same function and parameters; :class:`~.discriminator.Discriminator`
owns the head). At nz 100, ngf = ndf = 64, 3 channels, 64x64: G 3,576,704 and D 2,765,568
parameters (PyTorch's DCGAN tutorial configuration).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ranges import OutputRange
from .dcgan import Wrap, _identity
from .layers import output_activation


def _steps(resolution: int) -> int:
    """Stride-2 layers between 4x4 and the image side: 3 at 32, 4 at 64."""
    steps = int(math.log2(resolution // 4))
    assert 4 << steps == resolution, resolution
    return steps


class RadfordGenerator(nn.Module):
    """``[B, in_dim] -> [B, channels, R, R]``, R in (32, 64)."""

    def __init__(self, in_dim: int, ngf: int, channels: int, resolution: int,
                 output_range: OutputRange):
        super().__init__()
        self.in_dim = in_dim
        steps = _steps(resolution)
        width = ngf << (steps - 1)  # 8 ngf at 64, 4 ngf at 32
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]  # [B, w, 4, 4]
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False),  # [B, C, R, R]
                   output_activation(output_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v.view(v.shape[0], self.in_dim, 1, 1))


def radford_trunk(channels: int, resolution: int, ndf: int, batch_norm: bool,
                  sn: Wrap | None = None) -> tuple[nn.Sequential, int]:
    """D's conv stack: ``[B, C, R, R] -> [B, F]`` with ``F = width x 4 x 4``; returns (trunk, F)."""
    sn = sn or _identity
    layers: list[nn.Module] = [sn(nn.Conv2d(channels, ndf, 4, 2, 1, bias=False)),
                               nn.LeakyReLU(0.2, inplace=True)]  # [B, ndf, R/2, R/2]
    width = ndf
    for _ in range(_steps(resolution) - 1):
        layers.append(sn(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False)))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width * 2))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        width *= 2
    return nn.Sequential(*layers, nn.Flatten()), width * 4 * 4  # [B, width * 16]
