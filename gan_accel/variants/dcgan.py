"""DCGAN: the seed README's tiny transposed-conv G and strided-conv D, BCE loss."""

from ..models import DCGANDiscriminator, DCGANGenerator
from .base import Variant


class DCGAN(Variant):
    name = "dcgan"
    summary = "transposed-conv G, strided-conv D (BN, SN), BCE, one-sided label smoothing"
    # The seed's hyperparameters: Adam 5e-4 D / 2e-4 G, betas (0.5, 0.99), batch 64, real
    # label 0.9, ReduceLROnPlateau(0.8, 5), latent N(0, 1)^16, SN + BN in D.
    preset = dict(lr_d=5e-4, lr_g=2e-4, beta1=0.5, beta2=0.99, batch_size=64, real_label=0.9,
                  plateau_factor=0.8, plateau_patience=5, latent_dim=16, latent_dist="normal",
                  spectral_norm=True, d_batch_norm=True)

    def build_generator(self):
        return DCGANGenerator(self.latent.z_dim, self.cfg.ngf, self.output_range)

    def build_discriminator(self):
        return DCGANDiscriminator(self.cfg.ndf, self.cfg.d_batch_norm, self.sn,
                                  self.cfg.minibatch_disc)


VARIANT = DCGAN
