"""Fully connected G and D (the original GAN and cGAN), optionally label-conditioned.

The seed's nets are 28x28 single-channel (``image_shape`` (1, 28, 28)); any ``(C, H, W)``
works. :func:`mlp_trunk` is D's hidden stack for the ``mlp`` architecture at any size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ranges import OutputRange
from .dcgan import Wrap, _identity
from .layers import MinibatchDiscrimination, output_activation


class MLPGenerator(nn.Module):
    """z [B, z_dim] (+ label [B]) -> image [B, *image_shape] in the output range."""

    def __init__(self, z_dim: int = 64, num_classes: int = 0, hidden=(256, 512),
                 output_range: OutputRange = OutputRange.SYMMETRIC,
                 image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.in_dim, self.num_classes, self.output_range = z_dim, num_classes, output_range
        self.image_shape = tuple(image_shape)
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        dims = [z_dim + num_classes, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Linear(dims[-1], math.prod(self.image_shape)),
                   output_activation(output_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(label)], dim=1)
        return self.net(z).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    """image [B, *image_shape] (+ label [B]) -> logit [B]; ``features`` is the last hidden layer.

    With classes, the label embedding is concatenated to the pixels (the cGAN paper) and, with
    ``projection``, also projected onto the last hidden layer: logit += <embed(y), features>
    (Miyato & Koyama 2018). 10 label channels beside 784 pixels are a faint signal that an MLP
    learns to use only slowly; the projection term makes the label count from the first steps.
    """

    def __init__(self, num_classes: int = 0, hidden=(512, 256), sn: Wrap | None = None,
                 minibatch_disc: bool = False, projection: bool = False,
                 image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        sn = sn or _identity
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        dims = [math.prod(image_shape) + num_classes, *hidden]
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


def mlp_trunk(in_features: int, hidden, sn: Wrap | None = None,
              batch_norm: bool = False) -> nn.Sequential:
    """D's hidden stack for the ``mlp`` architecture: ``[B, C, H, W] -> [B, hidden[-1]]``,
    dense + LeakyReLU 0.2 (BN after every dense layer but the first with ``batch_norm``)."""
    sn = sn or _identity
    dims = [in_features, *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(sn(nn.Linear(a, b)))
        if batch_norm and i > 0:
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)
