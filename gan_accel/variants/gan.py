"""GAN (Goodfellow et al. 2014): fully connected G and D, BCE, non-saturating G loss."""

from ..models import Arch, MLPDiscriminator, MLPGenerator
from ..ranges import OutputRange
from .base import Variant


class GAN(Variant):
    name = "gan"
    summary = "fully connected G and D, BCE loss, non-saturating G loss"
    output_range = OutputRange.SYMMETRIC  # Tanh output; data mapped to [-1, 1]
    # The sources give no numbers for the MLP GAN; these are the common MNIST settings (Adam
    # 2e-4, betas (0.5, 0.999), batch 64), no label smoothing, no SN, constant lr.
    paper_recipe = dict(lr_d=2e-4, lr_g=2e-4, beta1=0.5, beta2=0.999, batch_size=64,
                        real_label=1.0, plateau_factor=1.0, latent_dist="normal",
                        spectral_norm=False, d_batch_norm=False)
    # Adam 5e-4, 60 epochs: FID 104.7, the best length tried
    # (bench/results/2026-12-01-cpu-2c-1t-quality-part1.json; docs/recipes.md).
    tuned_recipe = {**paper_recipe, "lr_d": 5e-4, "lr_g": 5e-4, "epochs": 60}
    paper_arch = Arch.MLP  # fully connected at every size
    tiny_latent_dim = 64

    def tiny_generator(self):
        return MLPGenerator(self.latent.z_dim, output_range=self.output_range,
                            image_shape=self.nets.image_shape)

    def tiny_discriminator(self):
        return MLPDiscriminator(sn=self.sn, minibatch_disc=self.cfg.minibatch_disc,
                                image_shape=self.nets.image_shape)


VARIANT = GAN
