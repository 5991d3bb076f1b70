"""Pure-PyTorch references of the fused ops: what the Triton kernels are tested against, and
what runs wherever Triton does not (CPU, macOS, Windows). Imports with torch alone.

* :func:`torch_spectral_norm` (+ its power iteration and backward): numerically
  ``torch.nn.utils.parametrizations.spectral_norm``, paired with ``triton_spectral_norm``.
* :func:`torch_gp_norm_penalty`: ``mean_i((||g_i||_2 - 1)^2)``, paired with
  ``triton_gp_norm_penalty``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._launch import acc_dtype

__all__ = [
    "reshape_weight_to_matrix",
    "torch_gp_norm_penalty",
    "torch_outer_as_weight",
    "torch_spectral_norm",
    "torch_spectral_norm_backward",
    "torch_spectral_norm_power_iteration_",
]


# spectral norm


def reshape_weight_to_matrix(weight: Tensor, dim: int) -> Tensor:
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(weight.dim()) if d != dim))
    return weight.flatten(1)


def torch_outer_as_weight(u: Tensor, v: Tensor, weight: Tensor, dim: int) -> Tensor:
    """``u v^T`` laid out like ``weight`` (inverse of the matrix reshape for ``dim``)."""
    shape = list(weight.shape)
    moved = [shape[dim]] + shape[:dim] + shape[dim + 1 :]
    uv = torch.outer(u, v).to(weight.dtype).reshape(moved)
    return uv.movedim(0, dim)


@torch.no_grad()
def torch_spectral_norm_power_iteration_(
    weight_mat: Tensor, u: Tensor, v: Tensor, n_power_iterations: int, eps: float
) -> None:
    """PyTorch's ``_SpectralNorm._power_method``: update ``u``, ``v`` in place.

    Args:
        weight_mat: the ``[H, K]`` weight matrix.
        u, v: the ``[H]``/``[K]`` buffers, overwritten.
        n_power_iterations: number of iterations.
        eps: norm clamp.
    """
    for _ in range(n_power_iterations):
        F.normalize(torch.mv(weight_mat, v), dim=0, eps=eps, out=u)
        F.normalize(torch.mv(weight_mat.H, u), dim=0, eps=eps, out=v)


def torch_spectral_norm(
    weight: Tensor,
    u: Tensor,
    v: Tensor,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int = 0,
    training: bool = True,
) -> Tensor:
    """Pure-PyTorch spectral normalisation, step for step ``_SpectralNorm.forward``.

    Args:
        weight: the weight (``ndim >= 2``; 1-d weights are just normalised).
        u, v: singular-vector buffers, updated in place when ``training``.
        n_power_iterations: power iterations per training call.
        eps: norm clamp.
        dim: output dimension of ``weight``.
        training: whether to run the power iteration.

    Returns:
        ``weight / sigma`` (differentiable w.r.t. ``weight``, u and v held constant).
    """
    if weight.ndim == 1:
        return F.normalize(weight, dim=0, eps=eps)
    weight_mat = reshape_weight_to_matrix(weight, dim)
    if training:
        torch_spectral_norm_power_iteration_(weight_mat, u, v, n_power_iterations, eps)
    u = u.clone(memory_format=torch.contiguous_format)
    v = v.clone(memory_format=torch.contiguous_format)
    sigma = torch.vdot(u, torch.mv(weight_mat, v))
    return weight / sigma


def torch_spectral_norm_backward(
    grad: Tensor, weight: Tensor, u: Tensor, v: Tensor, sigma: Tensor, dim: int = 0
) -> Tensor:
    """Reference gradient of ``weight / (u^T W_mat v)`` w.r.t. ``weight`` (u, v constant).

    Returns:
        ``grad / sigma - (<grad, weight> / sigma^2) * (u v^T laid out like weight)``.
    """
    acc = acc_dtype(weight)
    s = sigma.reshape(()).to(acc)
    ga, wa = grad.to(acc), weight.to(acc)
    uv = torch_outer_as_weight(u.to(acc), v.to(acc), wa, dim)
    return (ga / s - ((ga * wa).sum() / (s * s)) * uv).to(weight.dtype)


# gradient penalty


def torch_gp_norm_penalty(g: Tensor) -> Tensor:
    """Pure-PyTorch WGAN-GP norm penalty ``mean_i((||g_i||_2 - 1)^2)``.

    Args:
        g: ``[B, ...]`` per-sample gradients.

    Returns:
        0-d tensor in ``g.dtype``. Its gradient at a zero row is 0 (``vector_norm``'s
        subgradient).
    """
    norms = torch.linalg.vector_norm(g.reshape(g.shape[0], -1), ord=2, dim=1)
    return ((norms - 1.0) ** 2).mean()
