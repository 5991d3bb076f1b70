"""An exponential moving average of G's weights: the generator that is sampled and shipped.

The decay follows the run's length the way StyleGAN2-ADA's does: the average has a
*half-life* in images, ``half_life_kimg * 1000``, capped at ``rampup`` times the images seen
so far, so early in a run (or in a short one) the average forgets quickly and late in a long
one it smooths over many steps. Per step, ``beta = 0.5 ** (batch_images / half_life)``.

BatchNorm running statistics describe the activations of the weights they were gathered
with; under averaged weights they are wrong (a DCGAN G averaged over a 0.999 decay scored FID
740 with G's statistics, 97 without averaging). So G's buffers are copied at each update,
and before the average is used (sample grids, evaluation, checkpoints and export) its
BatchNorm statistics are gathered anew from its own forward passes on a fixed set of latents
(BigGAN's "standing statistics").
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.layers import VirtualBatchNorm


def ema_beta(half_life_kimg: float, rampup: float, images_seen: int, batch_images: int) -> float:
    """The per-step decay for a half-life of ``half_life_kimg`` thousand images."""
    half_life = half_life_kimg * 1000.0
    if rampup > 0:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_images / max(half_life, 1e-8))


STAT_BATCHES = 8  # latent batches of STAT_BATCH_SIZE that re-estimate the BN statistics
STAT_BATCH_SIZE = 256
STAT_SEED = 0x5EED


@torch.no_grad()
def recalibrate_batch_norm(G: nn.Module, latent, device, batches: int = STAT_BATCHES,
                           batch_size: int = STAT_BATCH_SIZE, seed: int = STAT_SEED) -> None:
    """Re-estimate every BatchNorm's running statistics (and virtual batch norm's reference
    statistics) from G's forward passes.

    ``latent`` is the variant's :class:`LatentSpec`; latents come from a fixed-seed CPU
    generator, so the result does not depend on, or disturb, any other RNG.
    """
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms and not any(isinstance(m, VirtualBatchNorm) for m in G.modules()):
        return  # nothing whose statistics depend on the weights
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    was_training = G.training
    G.train()
    gen = torch.Generator().manual_seed(seed)
    try:
        for _ in range(batches):
            G(**{k: v.to(device) for k, v in latent.sample(batch_size, "cpu", gen).items()})
    finally:
        G.train(was_training)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


class GeneratorEMA(nn.Module):
    """``module`` is a frozen copy of G whose weights trail G's; :meth:`update` after G steps.

    Use :meth:`calibrated` to get the averaged generator with BatchNorm statistics that fit
    its weights.
    """

    def __init__(self, G: nn.Module, half_life_kimg: float, rampup: float = 0.05):
        super().__init__()
        self.half_life_kimg, self.rampup = half_life_kimg, rampup
        self.module = copy.deepcopy(G).requires_grad_(False)
        self._stale = True

    def calibrated(self, latent) -> nn.Module:
        """The averaged G, its BatchNorm statistics re-estimated if the weights moved."""
        if self._stale:
            device = next(self.module.parameters()).device
            recalibrate_batch_norm(self.module, latent, device)
            self._stale = False
        return self.module

    @torch.no_grad()
    def update(self, G: nn.Module, images_seen: int, batch_images: int) -> None:
        beta = ema_beta(self.half_life_kimg, self.rampup, images_seen, batch_images)
        ema_p, g_p = list(self.module.parameters()), list(G.parameters())
        torch._foreach_lerp_(ema_p, g_p, 1.0 - beta)
        for b_ema, b in zip(self.module.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)
        self._stale = True

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._stale = False  # a checkpoint holds calibrated statistics
