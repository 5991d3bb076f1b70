"""Network building blocks shared by the variants, and the architecture registry."""

from .arch import ARCH_CHOICES, AUTO, Arch
from .builders import NetShape
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_trunk
from .mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "ARCH_CHOICES", "AUTO", "Arch", "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator",
    "MLPGenerator", "NetShape", "dcgan_trunk",
]
