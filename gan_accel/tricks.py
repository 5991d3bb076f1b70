"""Improved-GAN tricks (Salimans et al. 2016), each usable with any variant.

One-sided label smoothing is the ``real_label`` target of the BCE losses; the other three
live here: feature matching, minibatch discrimination and historical averaging.
"""

from __future__ import annotations

import torch
from torch import nn


def feature_matching_loss(feat_real: torch.Tensor, feat_fake: torch.Tensor) -> torch.Tensor:
    """|| E f(x) - E f(G(z)) ||^2 over D's penultimate features [B, F]."""
    return (feat_real.detach().mean(0) - feat_fake.mean(0)).square().sum()


class MinibatchDiscrimination(nn.Module):
    """Appends, per sample, its closeness to the rest of the batch: [B, F] -> [B, F + K]."""

    def __init__(self, in_features: int, kernels: int = 16, kernel_dim: int = 8):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.05)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim)  # [B, K, d]
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # [B, B, K]
        o = torch.exp(-l1).sum(1) - 1.0  # exclude self: exp(0) = 1
        return torch.cat([f, o], dim=1)


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
        w = float(1.0 / self.count)
        for i, p in enumerate(module.parameters()):
            getattr(self, f"avg{i}").lerp_(p.detach(), w)
