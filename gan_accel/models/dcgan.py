"""The seed README's tiny DCGAN for 28x28 images (ngf = ndf = 16).

G: 172,608 parameters; D: 142,208 with BatchNorm, 141,824 without (spectral norm adds only
buffers). D returns logits: the seed's final Sigmoid is folded into the losses
(``binary_cross_entropy_with_logits``), which is the same function, numerically safer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..ranges import OutputRange
from .layers import MinibatchDiscrimination, output_activation

Wrap = Callable[[nn.Module], nn.Module]


def _identity(m: nn.Module) -> nn.Module:
    return m


class DCGANGenerator(nn.Module):
    """z [B, in_dim] -> image [B, C, 28, 28]; Sigmoid output ('unit') or Tanh ('symmetric')."""

    def __init__(self, in_dim: int = 16, ngf: int = 16,
                 output_range: OutputRange = OutputRange.UNIT, out_channels: int = 1):
        super().__init__()
        self.in_dim, self.output_range = in_dim, output_range

        def up(cin, cout, k, s, p):
            return [nn.ConvTranspose2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *up(in_dim, ngf * 8, 4, 1, 0),  # [B, 128, 4, 4]
            *up(ngf * 8, ngf * 4, 4, 2, 1),  # [B, 64, 8, 8]
            *up(ngf * 4, ngf * 2, 2, 2, 1),  # [B, 32, 14, 14]
            nn.ConvTranspose2d(ngf * 2, out_channels, 2, 2, 0, bias=False),  # [B, C, 28, 28]
            output_activation(output_range),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.in_dim, 1, 1))


def dcgan_trunk(ndf: int = 16, batch_norm: bool = True, sn: Wrap | None = None,
                in_channels: int = 1) -> nn.Sequential:
    """The seed D's three conv blocks: [B, C, 28, 28] -> [B, 8 ndf, 4, 4]."""
    sn = sn or _identity

    def block(cin, cout, k, s, p, bn):
        layers = [sn(nn.Conv2d(cin, cout, k, s, p, bias=False))]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        return [*layers, nn.LeakyReLU(0.2, inplace=True)]

    return nn.Sequential(
        *block(in_channels, ndf * 2, 4, 2, 1, False),  # [B, 32, 14, 14]
        *block(ndf * 2, ndf * 4, 2, 2, 1, batch_norm),  # [B, 64, 8, 8]
        *block(ndf * 4, ndf * 8, 4, 2, 1, batch_norm),  # [B, 128, 4, 4]
    )


class DCGANDiscriminator(nn.Module):
    """image [B, C, 28, 28] -> logit [B]; ``features`` gives the [B, 2048] trunk output."""

    def __init__(self, ndf: int = 16, batch_norm: bool = True, sn: Wrap | None = None,
                 minibatch_disc: bool = False, in_channels: int = 1):
        super().__init__()
        sn = sn or _identity
        self.trunk = dcgan_trunk(ndf, batch_norm, sn, in_channels)
        feat = ndf * 8 * 4 * 4
        self.mbd = MinibatchDiscrimination(feat) if minibatch_disc else None
        if self.mbd is None:
            self.head = sn(nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))  # [B, 1, 1, 1]
        else:
            self.head = sn(nn.Linear(feat + self.mbd.kernels, 1, bias=False))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        if self.mbd is None:
            return self.head(h).flatten()
        return self.head(self.mbd(h.flatten(1))).flatten()
