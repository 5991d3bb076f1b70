"""BEGAN's nets at 32x32 and 64x64 (Berthelot et al. 2017, Figure 1): no BatchNorm, ELU,
3x3 convs, sub-sampling by stride-2 convs and up-sampling by nearest neighbour.

With ``L = log2(R) - 2`` stages (4 at 64x64, 3 at 32x32) and ``n`` filters:

* decoder (G, and D's decoder): ``dense h -> 8x8xn``, then per stage two ``3x3 conv n`` +
  ELU, a 2x nearest up-sampling between stages, and a ``3x3 conv`` to the image (the output
  activation: Tanh for BEGAN's [-1, 1]);
* encoder (D): ``3x3 conv n`` + ELU, then per stage ``i = 1..L`` two ``3x3 conv i n`` + ELU
  and, between stages, a stride-2 ``3x3 conv i n`` + ELU; flatten ``8x8xLn`` and a dense
  layer to the bottleneck ``h``.

The layer plan follows the widely used reference reproduction (carpedm20/BEGAN-tensorflow):
the paper's ``Nh = Nz = 64``, ``n = 64`` are the defaults (``ngf`` is G's ``n``, ``ndf``
D's). Every layer has a bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ranges import OutputRange
from .dcgan import Wrap, _identity
from .layers import output_activation

BOTTOM = 8  # the side of the dense layers' feature maps


def _stages(resolution: int) -> int:
    stages = int(math.log2(resolution)) - 2
    assert BOTTOM << (stages - 1) == resolution, resolution
    return stages


class BEGANDecoder(nn.Module):
    """``[B, in_dim] -> [B, channels, R, R]``: BEGAN's G, and the decoder of its D."""

    def __init__(self, in_dim: int, n: int, channels: int, resolution: int,
                 output_range: OutputRange = OutputRange.SYMMETRIC, sn: Wrap | None = None):
        super().__init__()
        sn = sn or _identity
        self.n = n
        self.dense = sn(nn.Linear(in_dim, BOTTOM * BOTTOM * n))
        stages = _stages(resolution)
        layers: list[nn.Module] = []
        for i in range(stages):
            layers += [sn(nn.Conv2d(n, n, 3, 1, 1)), nn.ELU(inplace=True),
                       sn(nn.Conv2d(n, n, 3, 1, 1)), nn.ELU(inplace=True)]
            if i < stages - 1:
                layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
        layers += [sn(nn.Conv2d(n, channels, 3, 1, 1)), output_activation(output_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(self.dense(v).view(v.shape[0], self.n, BOTTOM, BOTTOM))


class BEGANAutoencoder(nn.Module):
    """Autoencoder D: ``D(x)`` is the per-sample L1 reconstruction error ``[B]``.

    ``features(x)`` is the ``[B, h_dim]`` bottleneck code; ``reconstruct(x)`` the image.
    """

    def __init__(self, h_dim: int, n: int, channels: int, resolution: int,
                 sn: Wrap | None = None, output_range: OutputRange = OutputRange.SYMMETRIC):
        super().__init__()
        sn = sn or _identity
        stages = _stages(resolution)
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, n, 3, 1, 1)), nn.ELU(inplace=True)]
        width = n
        for i in range(1, stages + 1):
            layers += [sn(nn.Conv2d(width, i * n, 3, 1, 1)), nn.ELU(inplace=True),
                       sn(nn.Conv2d(i * n, i * n, 3, 1, 1)), nn.ELU(inplace=True)]
            width = i * n
            if i < stages:  # sub-sampling
                layers += [sn(nn.Conv2d(width, width, 3, 2, 1)), nn.ELU(inplace=True)]
        self.encoder = nn.Sequential(*layers, nn.Flatten(),
                                     sn(nn.Linear(BOTTOM * BOTTOM * width, h_dim)))  # [B, h]
        self.decoder = BEGANDecoder(h_dim, n, channels, resolution, output_range, sn)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.reconstruct(x) - x).abs().flatten(1).mean(1)  # L(x) = |x - AE(x)|, [B]
