"""SN-GAN (Miyato et al. 2018): spectral norm on every D weight, no BN in D, hinge loss."""

import torch
import torch.nn.functional as F

from .dcgan import DCGAN


class SNGAN(DCGAN):
    name = "sngan"
    summary = "DCGAN nets, spectral norm on every D weight and no BN in D, hinge loss"
    loss_kind = "hinge"  # the SN-GAN paper's loss
    # The SN-GAN paper's setting C for its standard CNN: Adam lr 2e-4, betas (0.5, 0.999),
    # n_dis 1; D is the seed's DCGAN D with SN only (141,824 parameters).
    preset = dict(lr_d=2e-4, lr_g=2e-4, beta1=0.5, beta2=0.999, batch_size=64, real_label=1.0,
                  plateau_factor=1.0, latent_dim=16, latent_dist="normal",
                  spectral_norm=True, d_batch_norm=False)

    def adversarial_d(self, real_logit, fake_logit) -> torch.Tensor:
        """Hinge: E relu(1 - D(x)) + E relu(1 + D(G(z)))."""
        return F.relu(1.0 - real_logit).mean() + F.relu(1.0 + fake_logit).mean()

    def adversarial_g(self, fake_logit) -> torch.Tensor:
        return -fake_logit.mean()


VARIANT = SNGAN
