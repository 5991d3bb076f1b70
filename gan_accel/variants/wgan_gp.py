"""WGAN-GP (Gulrajani et al. 2017): Wasserstein critic plus a gradient penalty on x_hat.

The penalty's gradient ``g = dD(x_hat)/dx_hat`` must itself be differentiated (w.r.t. D's
weights). ``torch.autograd.grad(create_graph=True)`` does that eagerly but ``torch.compile``
refuses it ("aot_autograd does not currently support double backward"), so ``g`` comes from
``torch.func.grad`` over a ``functional_call`` of D: one code path that runs eagerly, compiles
with ``fullgraph=True`` and equals the autograd penalty.
"""

import torch
from torch.func import functional_call, grad

from ..errors import UserError
from ..models import Arch
from .base import Batch, Logs
from .dcgan import DCGAN
from .losses import Wasserstein


class WGANGP(DCGAN):
    name = "wgan-gp"
    summary = "DCGAN nets without BN in the critic, Wasserstein loss + gradient penalty"
    loss = Wasserstein()
    # The WGAN-GP paper (Algorithm 1): lambda 10, n_critic 5, Adam lr 1e-4, betas (0, 0.9),
    # batch 64; no BN in the critic (the penalty is per sample); constant learning rate.
    paper_recipe = dict(lr_d=1e-4, lr_g=1e-4, beta1=0.0, beta2=0.9, n_critic=5, gp_lambda=10.0,
                        batch_size=64, real_label=1.0, plateau_factor=1.0,
                        latent_dist="normal", spectral_norm=False, d_batch_norm=False)
    # The paper's n_critic 5 at 1e-4 gives only 468 G steps in 30 epochs (FID 458); n_critic 2
    # at 6e-4 for 40: FID 22.9 (bench/results/2026-12-01-cpu-2c-1t-quality-part1.json;
    # docs/recipes.md).
    tuned_recipe = {**paper_recipe, "n_critic": 2, "lr_d": 6e-4, "lr_g": 6e-4, "epochs": 40}
    paper_arch = Arch.RESNET  # the paper's CIFAR-10 / 64x64 ResNets

    def build_discriminator(self):
        if self.cfg.d_batch_norm:
            raise UserError("wgan-gp penalises each sample's gradient, which BatchNorm in the "
                            "critic mixes across the batch; drop --d-batch-norm")
        return super().build_discriminator()

    def input_gradient(self, x: torch.Tensor, see=None) -> torch.Tensor:
        """d D(see(x))/dx per sample, [B, C, R, R], differentiable w.r.t. D's weights.

        ``see`` is how D sees its input (the augmentation, differentiable); default: as is.
        """
        params = dict(self.D.named_parameters())
        buffers = dict(self.D.named_buffers())
        see = see or (lambda x_: x_)

        def critic_sum(x_, p, b):  # samples are independent, so d sum / dx_i = dD(x_i)/dx_i
            return functional_call(self.D, (p, b), (see(x_),)).sum()

        return grad(critic_sum)(x, params, buffers)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor,
                         eps: torch.Tensor, see=None) -> torch.Tensor:
        """mean_i (||grad D(x_hat_i)||_2 - 1)^2 with x_hat = eps real + (1 - eps) fake."""
        x_hat = eps * real + (1 - eps) * fake  # eps [B, 1, 1, 1]: one mix per sample
        return self.ops.gp_norm_penalty(self.input_gradient(x_hat, see))

    def d_loss(self, b: Batch) -> tuple[torch.Tensor, Logs]:
        with torch.no_grad():
            fake = self.generate(b.latent)
        real_logit = self.critic(self.augmented(b.real, b, 0), b.labels)
        fake_logit = self.critic(self.augmented(fake, b, 1), self.fake_labels(b))
        # eps comes from torch's global generator (checkpointed by the trainer); compiled, it
        # is Inductor's RNG, seeded from that generator, so eager and compiled draws differ.
        eps = torch.rand(b.real.shape[0], 1, 1, 1, device=b.real.device, dtype=b.real.dtype)
        gp = self.gradient_penalty(b.real, fake, eps, lambda x_: self.augmented(x_, b, 2))
        wdist = real_logit.mean() - fake_logit.mean()
        loss = -wdist + self.cfg.gp_lambda * gp
        if self.hist is not None:
            loss = loss + self.cfg.historical_averaging * self.hist["D"].penalty(self.D)
        return loss, {"loss_d": loss.detach(), "d_real": real_logit.detach().mean(),
                      "d_fake": fake_logit.detach().mean(), "gp": gp.detach(),
                      "w_dist": wdist.detach()}


VARIANT = WGANGP
