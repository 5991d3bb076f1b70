"""The two hot operations that have fused Triton kernels, as an injectable pair.

The library builds models and losses against :class:`Ops`; :data:`TORCH_OPS` is plain
PyTorch. The ``kernels`` package provides the fused versions (``kernels.spectral_norm`` and
``kernels.gp_norm_penalty``), wired in by the training entry point (``train.build_ops``), so
the core never imports ``kernels``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def torch_gp_norm_penalty(g: torch.Tensor) -> torch.Tensor:
    """mean_i (||g_i||_2 - 1)^2 over the per-sample flattened gradients ``g`` [B, ...]."""
    norms = torch.linalg.vector_norm(g.flatten(1), dim=1)
    return (norms - 1.0).square().mean()


@dataclass(frozen=True)
class Ops:
    """Implementations of spectral norm (module -> module) and the GP norm penalty."""

    name: str
    spectral_norm: Callable[[nn.Module], nn.Module]
    gp_norm_penalty: Callable[[torch.Tensor], torch.Tensor]


TORCH_OPS = Ops(
    name="torch",
    spectral_norm=torch.nn.utils.parametrizations.spectral_norm,
    gp_norm_penalty=torch_gp_norm_penalty,
)
