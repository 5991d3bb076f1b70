"""The SN-GAN / WGAN-GP ResNets (Miyato et al. 2018, Table 4; Gulrajani et al. 2017), at
32x32 and 64x64.

Blocks as in the SN-GAN reference code: G's block is ``BN, ReLU, 2x nearest upsampling,
3x3 conv, BN, ReLU, 3x3 conv`` plus a shortcut ``upsampling, 1x1 conv``; D's block is
``ReLU, 3x3 conv, ReLU, 3x3 conv[, 2x2 average pooling]`` plus a shortcut ``1x1 conv[,
pooling]`` (the conv only where the width or side changes), and D's first block convolves
before its first activation ("optimized" block: ``conv, ReLU, conv, pool`` + ``pool, 1x1
conv``). After the blocks D applies ReLU, sums over positions and maps the ``[B, F]`` sum to
one logit with a dense layer.

* 32x32 (Table 4, CIFAR-10): G ``dense -> 4x4x256``, three up-blocks at 256, ``BN, ReLU,
  3x3 conv`` to the image; D four blocks at 128 (down, down, same, same). Here G's width is
  ``4 ngf`` and D's ``2 ndf``, so the paper's nets are ``ngf = ndf = 64``.
* 64x64 (the SN-GAN / projection-discriminator ImageNet ResNet at 64): G ``dense -> 4x4x16
  ngf``, four up-blocks halving to ``ngf``; D five down-blocks ``ndf, 2, 4, 8, 16 ndf``;
  paper widths ``ngf = ndf = 64``.

Every layer has a bias. ``--d-batch-norm`` puts BN before each activation of D's residual
branches; the papers' D has no normalisation (WGAN-GP's critic must not: the penalty is per
sample).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ranges import OutputRange
from .dcgan import Wrap, _identity
from .layers import output_activation


def _norm(width: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(width) if on else nn.Identity()


class GBlock(nn.Module):
    """G's residual up-block: ``[B, cin, H, W] -> [B, cout, 2H, 2W]``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.b1, self.c1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.b2, self.c2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.c_sc = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2.0, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.c_sc(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DBlock(nn.Module):
    """D's residual block, optionally halving the side."""

    def __init__(self, cin: int, cout: int, down: bool, sn: Wrap, batch_norm: bool):
        super().__init__()
        self.down = down
        self.b1, self.c1 = _norm(cin, batch_norm), sn(nn.Conv2d(cin, cin, 3, 1, 1))
        self.b2, self.c2 = _norm(cin, batch_norm), sn(nn.Conv2d(cin, cout, 3, 1, 1))
        self.c_sc = sn(nn.Conv2d(cin, cout, 1, 1, 0)) if cin != cout or down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.b2(self.c1(F.relu(self.b1(x))))))
        s = self.c_sc(x) if self.c_sc is not None else x
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class DBlockFirst(nn.Module):
    """D's first ("optimized") block: convolves the image before any activation, halves."""

    def __init__(self, cin: int, cout: int, sn: Wrap, batch_norm: bool):
        super().__init__()
        self.c1, self.b1 = sn(nn.Conv2d(cin, cout, 3, 1, 1)), _norm(cout, batch_norm)
        self.c2 = sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.c_sc = sn(nn.Conv2d(cin, cout, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.b1(self.c1(x)))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


def _g_widths(ngf: int, resolution: int) -> list[int]:
    """Widths from G's 4x4 bottom to its last block."""
    if resolution == 32:
        return [4 * ngf] * 4
    assert resolution == 64, resolution
    return [16 * ngf, 8 * ngf, 4 * ngf, 2 * ngf, ngf]


class ResNetGenerator(nn.Module):
    """``[B, in_dim] -> [B, channels, R, R]``, R in (32, 64)."""

    def __init__(self, in_dim: int, ngf: int, channels: int, resolution: int,
                 output_range: OutputRange):
        super().__init__()
        widths = _g_widths(ngf, resolution)
        self.width = widths[0]
        self.dense = nn.Linear(in_dim, 4 * 4 * self.width)
        self.blocks = nn.Sequential(*(GBlock(a, b) for a, b in zip(widths[:-1], widths[1:],
                                                                    strict=True)))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True),
                                 nn.Conv2d(widths[-1], channels, 3, 1, 1),
                                 output_activation(output_range))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.dense(v).view(v.shape[0], self.width, 4, 4)  # [B, w, 4, 4]
        return self.out(self.blocks(h))  # [B, C, R, R]


class ResNetTrunk(nn.Module):
    """D's blocks, ReLU and sum over positions: ``[B, C, R, R] -> [B, F]``."""

    def __init__(self, channels: int, resolution: int, ndf: int, batch_norm: bool,
                 sn: Wrap | None = None):
        super().__init__()
        sn = sn or _identity
        if resolution == 32:  # down, down, same, same at 2 ndf
            w = 2 * ndf
            blocks = [DBlockFirst(channels, w, sn, batch_norm), DBlock(w, w, True, sn, batch_norm),
                      DBlock(w, w, False, sn, batch_norm), DBlock(w, w, False, sn, batch_norm)]
        else:
            assert resolution == 64, resolution
            widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf, 16 * ndf]
            blocks = [DBlockFirst(channels, ndf, sn, batch_norm)]
            blocks += [DBlock(a, b, True, sn, batch_norm)
                       for a, b in zip(widths[:-1], widths[1:], strict=True)]
            w = widths[-1]
        self.blocks = nn.Sequential(*blocks)
        self.features = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling, [B, F]
