"""DCGAN: transposed-conv G, strided-conv D, BCE loss; at 28x28 the seed README's tiny nets,
at 32 and 64 px Radford et al.'s."""

from ..models import DCGANDiscriminator, DCGANGenerator
from .base import Variant


class DCGAN(Variant):
    name = "dcgan"
    summary = "transposed-conv G, strided-conv D (BN, SN), BCE, one-sided label smoothing"
    # The seed README's hyperparameters.
    paper_recipe = dict(lr_d=5e-4, lr_g=2e-4, beta1=0.5, beta2=0.99, batch_size=64,
                        real_label=0.9, plateau_factor=0.8, plateau_patience=5,
                        latent_dist="normal", spectral_norm=True, d_batch_norm=True)
    # The seed's rates stop at FID 77.6 in 30 epochs of the subset; Adam 2e-3 without the
    # plateau schedule reaches 19.9 (bench/results/2026-12-01-cpu-2c-1t-quality-part1.json;
    # history in docs/recipes.md).
    tuned_recipe = {**paper_recipe, "lr_d": 2e-3, "lr_g": 2e-3, "plateau_factor": 1.0, "epochs": 30}

    def tiny_generator(self):
        return DCGANGenerator(self.latent.z_dim, self.cfg.ngf, self.output_range,
                              self.nets.channels)

    def tiny_discriminator(self):
        return DCGANDiscriminator(self.cfg.ndf, self.cfg.d_batch_norm, self.sn,
                                  self.cfg.minibatch_disc, self.nets.channels)


VARIANT = DCGAN
