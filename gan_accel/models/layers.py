"""Layers the improved-GAN tricks add to the networks (Salimans et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from ..ranges import OutputRange


def output_activation(output_range: OutputRange | str) -> nn.Module:
    """The generator's last activation for its output range: Sigmoid [0, 1], Tanh [-1, 1]."""
    return nn.Sigmoid() if OutputRange(output_range) is OutputRange.UNIT else nn.Tanh()


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
