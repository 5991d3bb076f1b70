"""Layers the improved-GAN tricks add to the networks (Salimans et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from ..ranges import OutputRange


def output_activation(output_range: OutputRange | str) -> nn.Module:
    """The generator's last activation for its output range: Sigmoid [0, 1], Tanh [-1, 1]."""
    return nn.Sigmoid() if OutputRange(output_range) is OutputRange.UNIT else nn.Tanh()


def stateless_call(module: nn.Module, x: torch.Tensor, frozen: bool = False) -> torch.Tensor:
    """``module(x)`` with in-place buffer updates (BatchNorm's running statistics) landing on
    copies, so these inputs leave no trace in them; ``frozen``: its weights also act as
    constants (gradients reach ``x`` and not them)."""
    state = {n: p.detach() if frozen else p for n, p in module.named_parameters()}
    state.update({n: b.clone() for n, b in module.named_buffers()})
    return torch.func.functional_call(module, state, (x,))


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


class VirtualBatchNorm(nn.Module):
    """Virtual batch norm (Salimans et al. 2016): each example is normalised with the
    statistics of a batch fixed once at the start of training (the paper's "reference batch")
    together with itself, so an example's output does not depend on the other examples of its
    minibatch.

    In training, the first ``fixed_rows`` rows of the input are the fixed batch (see
    :class:`FixedBatchGenerator`, which prepends them): their per-channel mean and mean
    square are taken from those rows, with gradient, and kept as buffers for evaluation, where
    the input holds no fixed rows. Per example ``i`` with per-channel mean ``m_i`` and
    mean square ``s_i`` over its spatial positions, and ``c = 1 / (fixed_rows + 1)``::

        mean_i = c m_i + (1 - c) mean_fixed,   var_i = c s_i + (1 - c) sq_fixed - mean_i^2
        y_i = gamma (x_i - mean_i) / sqrt(var_i + eps) + beta

    Same parameters as the BatchNorm it replaces (so parameter counts are unchanged).
    """

    def __init__(self, num_features: int, fixed_rows: int, eps: float = 1e-5):
        super().__init__()
        self.fixed_rows, self.eps = fixed_rows, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("fixed_mean", torch.zeros(num_features))
        self.register_buffer("fixed_meansq", torch.ones(num_features))

    @classmethod
    def replacing(cls, bn: nn.modules.batchnorm._BatchNorm, fixed_rows: int) -> VirtualBatchNorm:
        vbn = cls(bn.num_features, fixed_rows, bn.eps)
        if bn.affine:
            with torch.no_grad():
                vbn.weight.copy_(bn.weight)
                vbn.bias.copy_(bn.bias)
        return vbn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]  # batch and spatial axes
        spatial = list(range(2, x.dim()))
        if self.training:
            fixed = x[: self.fixed_rows]
            fixed_mean, fixed_meansq = fixed.mean(dims), fixed.square().mean(dims)  # [C]
            with torch.no_grad():
                self.fixed_mean.copy_(fixed_mean)
                self.fixed_meansq.copy_(fixed_meansq)
        else:
            fixed_mean, fixed_meansq = self.fixed_mean, self.fixed_meansq
        shape = (1, -1) + (1,) * len(spatial)
        own_mean = x.mean(spatial, keepdim=True) if spatial else x  # [B, C, 1, 1] or [B, C]
        own_meansq = x.square().mean(spatial, keepdim=True) if spatial else x.square()
        c = 1.0 / (self.fixed_rows + 1)
        mean = c * own_mean + (1 - c) * fixed_mean.view(shape)
        var = (c * own_meansq + (1 - c) * fixed_meansq.view(shape) - mean.square()).clamp_min(0)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


class FixedBatchGenerator(nn.Module):
    """A generator whose BatchNorms are :class:`VirtualBatchNorm` over a fixed batch of latents.

    ``fixed_latent`` (drawn once, a buffer so it is checkpointed) is prepended to every
    training forward; its outputs are dropped. In eval mode the generator runs alone, with
    the fixed batch's statistics of the last training forward.
    """

    def __init__(self, G: nn.Module, fixed_latent: dict[str, torch.Tensor]):
        super().__init__()
        self.fixed_rows = next(iter(fixed_latent.values())).shape[0]
        for name, m in list(G.named_modules()):
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                parent, _, attr = name.rpartition(".")
                setattr(G.get_submodule(parent) if parent else G, attr,
                        VirtualBatchNorm.replacing(m, self.fixed_rows))
        self.G = G
        self.names = list(fixed_latent)
        for k, v in fixed_latent.items():
            self.register_buffer(f"fixed_{k}", v)
        self.output_range = getattr(G, "output_range", None)

    def forward(self, **latent: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.G(**latent)
        joined = {k: torch.cat([getattr(self, f"fixed_{k}"), latent[k]]) for k in self.names}
        return self.G(**joined)[self.fixed_rows:]
