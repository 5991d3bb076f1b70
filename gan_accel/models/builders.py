"""Build an architecture's generator body and discriminator trunk for an image shape.

:class:`NetShape` is what a variant's nets are built for: the architecture, the image's
channels and side, and the widths. The tiny seed nets differ per variant and are built by
the variants themselves; every other architecture comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..ranges import OutputRange
from .arch import Arch
from .began_paper import BEGANAutoencoder, BEGANDecoder
from .dcgan import Wrap
from .discriminator import Discriminator, InfoDiscriminator
from .generator import LatentGenerator
from .mlp import MLPGenerator, mlp_trunk
from .radford import RadfordGenerator, radford_trunk
from .resnet import ResNetGenerator, ResNetTrunk
from .sngan_cnn import SNGANCNNGenerator, sngan_cnn_trunk


@dataclass(frozen=True)
class NetShape:
    """The nets' architecture, image shape ``[channels, resolution, resolution]`` and widths."""

    arch: Arch
    channels: int
    resolution: int
    ngf: int
    ndf: int

    def __post_init__(self):
        assert self.resolution in self.arch.resolutions, (self.arch, self.resolution)
        assert self.channels in (1, 3) and self.ngf > 0 and self.ndf > 0, self

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.resolution, self.resolution)


def generator_body(shape: NetShape, in_dim: int, output_range: OutputRange) -> nn.Module:
    """``[B, in_dim] -> [B, C, R, R]`` in ``output_range`` for ``shape.arch``."""
    a, c, r, w = shape.arch, shape.channels, shape.resolution, shape.ngf
    if a is Arch.MLP:  # the seed's MLP hidden widths (256, 512) at ngf 16
        return MLPGenerator(in_dim, 0, (16 * w, 32 * w), output_range, shape.image_shape)
    if a is Arch.DCGAN:
        return RadfordGenerator(in_dim, w, c, r, output_range)
    if a is Arch.SNGAN_CNN:
        return SNGANCNNGenerator(in_dim, w, c, r, output_range)
    if a is Arch.RESNET:
        return ResNetGenerator(in_dim, w, c, r, output_range)
    if a is Arch.BEGAN:
        return BEGANDecoder(in_dim, w, c, r, output_range)
    raise AssertionError(f"{a} nets are built by their variant")


def discriminator_trunk(shape: NetShape, sn: Wrap | None, batch_norm: bool
                        ) -> tuple[nn.Module, int, bool]:
    """(trunk ``[B, C, R, R] -> [B, F]``, F, whether the head has a bias) for ``shape.arch``."""
    a, c, r, w = shape.arch, shape.channels, shape.resolution, shape.ndf
    if a is Arch.MLP:  # the seed's MLP D widths (512, 256) at ndf 16
        return mlp_trunk(c * r * r, (32 * w, 16 * w), sn, batch_norm), 16 * w, True
    if a is Arch.DCGAN:
        return (*radford_trunk(c, r, w, batch_norm, sn), False)  # Radford: no biases
    if a is Arch.SNGAN_CNN:
        return (*sngan_cnn_trunk(c, r, w, batch_norm, sn), True)
    if a is Arch.RESNET:
        trunk = ResNetTrunk(c, r, w, batch_norm, sn)
        return trunk, trunk.features, True
    raise AssertionError(f"{a} has no logit discriminator trunk")


def build_generator(shape: NetShape, in_dim: int, output_range: OutputRange,
                    num_classes: int = 0) -> LatentGenerator:
    """``G(z[, label][, codes])``: ``in_dim`` is the noise + code width; a label adds
    ``num_classes`` (its embedding)."""
    body = generator_body(shape, in_dim + num_classes, output_range)
    return LatentGenerator(body, output_range, num_classes)


def build_discriminator(shape: NetShape, sn: Wrap | None, batch_norm: bool,
                        num_classes: int = 0, minibatch_disc: bool = False) -> Discriminator:
    """``D(x[, label]) -> [B]``; with ``num_classes`` a projection discriminator."""
    trunk, features, bias = discriminator_trunk(shape, sn, batch_norm)
    return Discriminator(trunk, features, sn, bias, num_classes, minibatch_disc)


def build_info_discriminator(shape: NetShape, sn: Wrap | None, batch_norm: bool, cat_dim: int,
                             cont_dim: int, logvar_head: bool, q_hidden: int
                             ) -> InfoDiscriminator:
    """InfoGAN's D: the architecture's trunk with the D head and Q heads on its features."""
    trunk, features, bias = discriminator_trunk(shape, sn, batch_norm)
    return InfoDiscriminator(trunk, features, sn, bias, cat_dim, cont_dim, logvar_head, q_hidden)


def build_autoencoder(shape: NetShape, h_dim: int, sn: Wrap | None,
                      output_range: OutputRange) -> BEGANAutoencoder:
    """BEGAN's autoencoder D at ``shape`` (the ``began`` architecture)."""
    assert shape.arch is Arch.BEGAN, shape.arch
    return BEGANAutoencoder(h_dim, shape.ndf, shape.channels, shape.resolution, sn, output_range)
