"""SN-GAN (Miyato et al. 2018): spectral norm on every D weight, no BN in D, hinge loss."""

from ..models import Arch
from .dcgan import DCGAN
from .losses import Hinge


class SNGAN(DCGAN):
    name = "sngan"
    summary = "DCGAN nets, spectral norm on every D weight and no BN in D, hinge loss"
    loss = Hinge()  # the SN-GAN paper's loss
    # The SN-GAN paper's setting C for its standard CNN: Adam lr 2e-4, betas (0.5, 0.999),
    # n_dis 1; D is the seed's DCGAN D with SN only (141,824 parameters).
    paper_recipe = dict(lr_d=2e-4, lr_g=2e-4, beta1=0.5, beta2=0.999, batch_size=64,
                        real_label=1.0, plateau_factor=1.0, latent_dist="normal",
                        spectral_norm=True, d_batch_norm=False)
    # Adam 1e-3 with the paper's ResNet betas (0, 0.9), 30 epochs: FID 11.7
    # (bench/results/2026-12-01-cpu-2c-1t-quality-part2.json); betas (0.5, 0.999) at that rate:
    # 58.5 (docs/recipes.md).
    tuned_recipe = {**paper_recipe, "lr_d": 1e-3, "lr_g": 1e-3, "beta1": 0.0, "beta2": 0.9,
              "epochs": 30}
    paper_arch = Arch.SNGAN_CNN  # the paper's standard CNN


VARIANT = SNGAN
