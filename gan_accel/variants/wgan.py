"""WGAN (Arjovsky et al. 2017): a critic with clipped weights, n_critic critic steps per G step."""

import torch

from .dcgan import DCGAN
from .losses import Wasserstein


class WGAN(DCGAN):
    name = "wgan"
    summary = "DCGAN nets, Wasserstein critic (no sigmoid), weights clipped to +-clip_value"
    loss = Wasserstein()
    # The WGAN paper: RMSprop lr 5e-5, clip 0.01, n_critic 5, batch 64, the DCGAN critic with
    # its BN (clipped like every other critic parameter); no label smoothing, constant learning
    # rate. Without BN the clipped 4-layer critic is too weak here: G collapsed to one blob in
    # 100 epochs, while with BN strokes appear within 30.
    paper_recipe = dict(optimizer="rmsprop", lr_d=5e-5, lr_g=5e-5, n_critic=5, clip_value=0.01,
                        batch_size=64, real_label=1.0, plateau_factor=1.0,
                        latent_dist="normal", spectral_norm=False, d_batch_norm=True)
    # The paper's n_critic 5 at 5e-5 leaves 7 classes in 30 epochs; n_critic 2 at 5e-4 for 60:
    # FID 80.4, 10 classes (bench/results/2026-12-01-cpu-2c-1t-quality-part2.json;
    # docs/recipes.md).
    tuned_recipe = {**paper_recipe, "n_critic": 2, "lr_d": 5e-4, "lr_g": 5e-4, "epochs": 60}

    @torch.no_grad()
    def clip_critic(self) -> None:
        """Clamp every critic parameter to [-clip_value, clip_value] (in place)."""
        c = self.cfg.clip_value
        for p in self.D.parameters():
            p.clamp_(-c, c)

    def after_d(self) -> None:
        self.clip_critic()
        super().after_d()


VARIANT = WGAN
