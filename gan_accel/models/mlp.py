"""Fully connected G and D (the original GAN and cGAN), optionally label-conditioned."""

from __future__ import annotations

import torch
from torch import nn

from ..ranges import OutputRange
from .dcgan import Wrap, _identity
from .layers import MinibatchDiscrimination, output_activation


class MLPGenerator(nn.Module):
    """z [B, z_dim] (+ label [B]) -> image [B, 1, 28, 28] in [-1, 1] (Tanh)."""

    def __init__(self, z_dim: int = 64, num_classes: int = 0, hidden=(256, 512),
                 output_range: OutputRange = OutputRange.SYMMETRIC):
        super().__init__()
        self.in_dim, self.num_classes, self.output_range = z_dim, num_classes, output_range
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        dims = [z_dim + num_classes, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Linear(dims[-1], 28 * 28),
                   output_activation(output_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(label)], dim=1)
        return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """image [B, 1, 28, 28] (+ label [B]) -> logit [B]; ``features`` is the last hidden layer.

    With classes, the label embedding is concatenated to the pixels (the cGAN paper) and, with
    ``projection``, also projected onto the last hidden layer: logit += <embed(y), features>
    (Miyato & Koyama 2018). 10 label channels beside 784 pixels are a faint signal that an MLP
    learns to use only slowly; the projection term makes the label count from the first steps.
    """

    def __init__(self, num_classes: int = 0, hidden=(512, 256), sn: Wrap | None = None,
                 minibatch_disc: bool = False, projection: bool = False):
        super().__init__()
        sn = sn or _identity
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        dims = [28 * 28 + num_classes, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [sn(nn.Linear(a, b)), nn.LeakyReLU(0.2, inplace=True)]
        self.trunk = nn.Sequential(*layers)
        self.mbd = MinibatchDiscrimination(dims[-1]) if minibatch_disc else None
        self.head = sn(nn.Linear(dims[-1] + (self.mbd.kernels if self.mbd else 0), 1))
        self.proj = (sn(nn.Embedding(num_classes, dims[-1])) if num_classes and projection
                     else None)

    def features(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.embed is not None:
            h = torch.cat([h, self.embed(label)], dim=1)
        return self.trunk(h)

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x, label)
        proj = (self.proj(label) * f).sum(1) if self.proj is not None else 0.0  # [B]
        if self.mbd is not None:
            f = self.mbd(f)
        return self.head(f).flatten() + proj
