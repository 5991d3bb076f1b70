"""The architecture registry: the network families a run can train with, and their facts.

A run's nets are one :class:`Arch` at one resolution, for any channel count (1 or 3), at
widths ``ngf`` / ``ndf`` (``0``: the paper's). Which variant may use which family, and which
one ``--arch auto`` picks, is the variant's business (:mod:`gan_accel.variants`); this module
holds only what is true of the nets themselves:

=========== ============= ===== ====== ===================================================
name        resolutions   width latent paper
=========== ============= ===== ====== ===================================================
tiny        28            16    seed   the seed README's nets (per variant, unchanged)
mlp         28, 32, 64    16    64     fully connected G and D (Goodfellow et al. 2014)
dcgan       32, 64        64    100    Radford et al. 2016 (64x64; its 32x32 form)
sngan-cnn   32, 64        64    128    Miyato et al. 2018, Table 3 "standard CNN"
resnet      32, 64        64    128    Miyato et al. 2018 / Gulrajani et al. 2017 ResNets
began       32, 64        64    64     Berthelot et al. 2017, autoencoder D (Figure 1)
=========== ============= ===== ====== ===================================================

"width" is the paper's ``ngf = ndf``; "latent" the paper's noise width (``--latent-dim 0``
resolves to it; the tiny nets keep each variant's seed value).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchFacts:
    """What an architecture is, independent of the variant that trains it."""

    resolutions: tuple[int, ...]
    width: int  # the paper's ngf = ndf
    latent_dim: int  # the paper's noise width; 0: the variant's seed value (tiny nets)
    paper: str
    autoencoder: bool = False  # D is an autoencoder returning reconstruction errors


class Arch(str, enum.Enum):
    """A network family (``--arch``)."""

    TINY = "tiny"
    MLP = "mlp"
    DCGAN = "dcgan"
    SNGAN_CNN = "sngan-cnn"
    RESNET = "resnet"
    BEGAN = "began"

    @property
    def facts(self) -> ArchFacts:
        return _FACTS[self]

    @property
    def resolutions(self) -> tuple[int, ...]:
        return self.facts.resolutions

    @property
    def width(self) -> int:
        return self.facts.width

    def __str__(self) -> str:
        return self.value


_FACTS = {
    Arch.TINY: ArchFacts((28,), 16, 0, "the seed README's tiny MNIST nets (gan/cgan: its MLPs)"),
    Arch.MLP: ArchFacts((28, 32, 64), 16, 64, "fully connected G and D (Goodfellow et al. "
                        "2014), the seed's MLP widths"),
    Arch.DCGAN: ArchFacts((32, 64), 64, 100, "DCGAN (Radford et al. 2016)"),
    Arch.SNGAN_CNN: ArchFacts((32, 64), 64, 128, "SN-GAN standard CNN (Miyato et al. 2018, "
                              "Table 3)"),
    Arch.RESNET: ArchFacts((32, 64), 64, 128, "SN-GAN / WGAN-GP ResNet (Miyato et al. 2018; "
                           "Gulrajani et al. 2017)"),
    Arch.BEGAN: ArchFacts((32, 64), 64, 64, "BEGAN autoencoder D and decoder G (Berthelot "
                          "et al. 2017)", autoencoder=True),
}

AUTO = "auto"
ARCH_CHOICES = (AUTO, *(a.value for a in Arch))

