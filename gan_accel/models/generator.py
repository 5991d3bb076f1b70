"""The generator every scalable architecture shares: the latent parts joined, then the body.

``G(z[, label][, codes]) -> [B, C, R, R]``: the noise, a learned embedding of the class label
(cGAN: one vector per class, as wide as the number of classes) and InfoGAN's codes are
concatenated into one ``[B, in_dim]`` vector, which the architecture's body maps to an image
in the variant's output range.
"""

from __future__ import annotations

import torch
from torch import nn

from ..ranges import OutputRange


class LatentGenerator(nn.Module):
    """``body`` on ``z ++ embed(label) ++ codes``; ``in_dim`` is the body's input width."""

    def __init__(self, body: nn.Module, output_range: OutputRange, num_classes: int = 0):
        super().__init__()
        self.output_range = output_range
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        self.body = body

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None,
                codes: torch.Tensor | None = None) -> torch.Tensor:
        parts = [z]
        if self.embed is not None:
            parts.append(self.embed(label))
        if codes is not None:
            parts.append(codes)
        return self.body(torch.cat(parts, dim=1) if len(parts) > 1 else z)
