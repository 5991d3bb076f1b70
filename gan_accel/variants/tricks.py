"""Improved-GAN tricks (Salimans et al. 2016) that are losses or training state.

One-sided label smoothing is the ``real_label`` target of the losses (:mod:`.losses`);
feature matching and historical averaging live here; minibatch discrimination and virtual
batch norm are layers (:mod:`gan_accel.models.layers`).
"""

from __future__ import annotations

import torch
from torch import nn


def feature_matching_loss(feat_real: torch.Tensor, feat_fake: torch.Tensor) -> torch.Tensor:
    """|| E f(x) - E f(G(z)) ||^2 over D's penultimate features [B, F]."""
    return (feat_real.detach().mean(0) - feat_fake.mean(0)).square().sum()


class HistoricalAverage(nn.Module):
    """Keeps the running mean of a module's parameters; penalty = ||theta - mean||^2."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.names = [n for n, _ in module.named_parameters()]
        for i, (_, p) in enumerate(module.named_parameters()):
            self.register_buffer(f"avg{i}", p.detach().clone())
        self.register_buffer("count", torch.ones((), dtype=torch.float64))

    def penalty(self, module: nn.Module) -> torch.Tensor:
        terms = [(p - getattr(self, f"avg{i}")).square().sum()
                 for i, p in enumerate(module.parameters())]
        return torch.stack(terms).sum()

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.count += 1
        avgs = [getattr(self, f"avg{i}") for i, _ in enumerate(module.parameters())]
        # the weight stays a device tensor: no host sync in the training step
        torch._foreach_lerp_(avgs, [p.detach() for p in module.parameters()],
                             (1.0 / self.count).to(avgs[0].dtype))
