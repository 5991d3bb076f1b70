"""The SN-GAN "standard CNN" (Miyato et al. 2018, Table 3), at 32x32 and 64x64.

G: ``z -> dense -> M x M x 8 ngf`` (BN, ReLU), three 4x4 stride-2 transposed convs halving
the width (BN, ReLU), a 3x3 conv to the image (the output activation); ``M = R / 8`` (the
paper's ``M_g = 4`` at 32x32; 8 gives the 64x64 form). D: seven convs alternating 3x3
stride 1 and 4x4 stride 2, widths ``ndf, ndf, 2 ndf, 2 ndf, 4 ndf, 4 ndf, 8 ndf``,
LeakyReLU 0.1, then a dense layer to one logit on the flattened ``M x M x 8 ndf`` features.
Every layer has a bias (the reference Chainer code's default). The paper's widths are
``ngf = ndf = 64`` (512 at G's bottom and D's top). The table lists no normalisation after
G's dense layer; the reference code has BN and ReLU there, kept here as one BN per channel.
``--d-batch-norm`` adds BN after every D conv but the first (as in DCGAN's D); the paper's
D has none.
"""

from __future__ import annotations

import torch
from torch import nn

from ..ranges import OutputRange
from .dcgan import Wrap, _identity
from .layers import output_activation

SLOPE = 0.1  # the paper's LeakyReLU slope


class SNGANCNNGenerator(nn.Module):
    """``[B, in_dim] -> [B, channels, R, R]``, R in (32, 64)."""

    def __init__(self, in_dim: int, ngf: int, channels: int, resolution: int,
                 output_range: OutputRange):
        super().__init__()
        self.bottom, self.width = resolution // 8, 8 * ngf
        self.dense = nn.Linear(in_dim, self.bottom * self.bottom * self.width)
        layers: list[nn.Module] = [nn.BatchNorm2d(self.width), nn.ReLU(inplace=True)]
        width = self.width
        for _ in range(3):  # [B, w, M, M] -> [B, w / 8, 8 M, 8 M]
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.BatchNorm2d(width // 2),
                       nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.Conv2d(width, channels, 3, 1, 1), output_activation(output_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.dense(v).view(v.shape[0], self.width, self.bottom, self.bottom)
        return self.net(h)


def sngan_cnn_trunk(channels: int, resolution: int, ndf: int, batch_norm: bool,
                    sn: Wrap | None = None) -> tuple[nn.Sequential, int]:
    """D's seven convs: ``[B, C, R, R] -> [B, F]``, ``F = 8 ndf (R / 8)^2``; (trunk, F)."""
    sn = sn or _identity
    plan = [(ndf, 3, 1), (ndf, 4, 2), (2 * ndf, 3, 1), (2 * ndf, 4, 2), (4 * ndf, 3, 1),
            (4 * ndf, 4, 2), (8 * ndf, 3, 1)]  # (width, kernel, stride) as in Table 3
    layers: list[nn.Module] = []
    width = channels
    for i, (out, k, s) in enumerate(plan):
        layers.append(sn(nn.Conv2d(width, out, k, s, 1)))
        if batch_norm and i > 0:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.LeakyReLU(SLOPE, inplace=True))
        width = out
    side = resolution // 8
    return nn.Sequential(*layers, nn.Flatten()), width * side * side
