"""Network building blocks shared by the variants."""

from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_trunk
from .mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "dcgan_trunk",
]
