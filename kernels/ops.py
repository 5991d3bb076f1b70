"""The public ops: spectral-norm parametrization and the WGAN-GP norm penalty, each taking
``impl="auto" | "triton" | "torch"``.

This module imports with torch alone. The Triton side (:mod:`.fused_spectral_norm`,
:mod:`.grad_penalty`) is imported when it is selected: when a :class:`SpectralNorm` is built
with ``impl`` other than ``"torch"`` on a machine with Triton, or the first time
:func:`gp_norm_penalty` resolves to Triton. Without Triton, ``"auto"`` runs the references
(said once) and ``"triton"`` raises naming the fix.
"""

from __future__ import annotations

from types import ModuleType

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ._launch import IMPLS, TRITON_MISSING, has_triton, resolve_impl
from .reference import (
    reshape_weight_to_matrix,
    torch_gp_norm_penalty,
    torch_spectral_norm,
    torch_spectral_norm_power_iteration_,
)

__all__ = ["SpectralNorm", "gp_norm_penalty", "spectral_norm", "triton_module"]

SPECTRAL_NORM = "spectral_norm"
GP_NORM_PENALTY = "gp_norm_penalty"


def triton_module(op_name: str) -> ModuleType:
    """The Triton implementation module of ``op_name`` (imported on first use).

    Plain import statements, not importlib: Dynamo runs them while it traces, so a first call
    inside ``torch.compile(fullgraph=True)`` loads the module without a graph break.

    Raises:
        RuntimeError: when Triton is not installed (names the fix).
    """
    if not has_triton():
        raise RuntimeError(f"{op_name}: {TRITON_MISSING}")
    if op_name == SPECTRAL_NORM:
        from . import fused_spectral_norm as module
    else:
        from . import grad_penalty as module
    return module


# --------------------------------------------------------------------------------------------
# Spectral norm
# --------------------------------------------------------------------------------------------


class SpectralNorm(nn.Module):
    """Spectral-norm parametrization, state-dict compatible with PyTorch's ``_SpectralNorm``.

    Buffers ``_u`` ``[H]`` and ``_v`` ``[K]`` (absent for 1-d weights), initialised exactly as
    PyTorch does: normalised ``normal_(0, 1)`` vectors followed by 15 power iterations.
    """

    def __init__(
        self,
        weight: Tensor,
        n_power_iterations: int = 1,
        dim: int = 0,
        eps: float = 1e-12,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] "
                f"but got {dim})"
            )
        if not isinstance(n_power_iterations, int) or n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be a positive int, but got "
                f"n_power_iterations={n_power_iterations!r}"
            )
        if impl not in IMPLS:
            raise ValueError(f"impl must be 'auto', 'triton' or 'torch', got {impl!r}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        self.impl = impl
        # Loaded here, not in forward: the compiled step must find it already imported.
        self._triton = None
        if impl == "triton" or (impl == "auto" and has_triton()):
            self._triton = triton_module(SPECTRAL_NORM).triton_spectral_norm
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = reshape_weight_to_matrix(weight.detach(), self.dim)
            h, w = weight_mat.size()
            u = weight_mat.new_empty(h).normal_(0, 1)
            v = weight_mat.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            torch_spectral_norm_power_iteration_(weight_mat, self._u, self._v, 15, self.eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        impl = resolve_impl(self.impl, weight, SPECTRAL_NORM)
        fn = self._triton if impl == "triton" else torch_spectral_norm
        return fn(
            weight, self._u, self._v, self.n_power_iterations, self.eps, self.dim, self.training
        )

    def right_inverse(self, value: Tensor) -> Tensor:
        return value

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}, impl={self.impl!r}"


def spectral_norm(
    module: nn.Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
    impl: str = "auto",
) -> nn.Module:
    """Apply spectral normalisation to ``module.<name>`` (drop-in for PyTorch's parametrization).

    Args:
        module: the layer (Linear, Conv*, ConvTranspose*, ...).
        name: name of the weight parameter.
        n_power_iterations: power iterations per training forward (>= 1).
        eps: norm clamp.
        dim: output dimension; default 1 for ConvTranspose1/2/3d, else 0.
        impl: ``"auto"`` (Triton on CUDA where installed, the reference elsewhere, announced
            once), ``"triton"`` or ``"torch"``.

    Returns:
        ``module``, with a :class:`SpectralNorm` parametrization registered on ``name``; its
        state dict has the same keys as with ``torch.nn.utils.parametrizations.spectral_norm``.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        convt = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        dim = 1 if isinstance(module, convt) else 0
    parametrize.register_parametrization(
        module, name, SpectralNorm(weight, n_power_iterations, dim, eps, impl=impl)
    )
    return module


# --------------------------------------------------------------------------------------------
# Gradient penalty
# --------------------------------------------------------------------------------------------


def gp_norm_penalty(g: Tensor, impl: str = "auto") -> Tensor:
    """WGAN-GP penalty ``mean_i((||g_i||_2 - 1)^2)`` over per-sample gradients.

    Args:
        g: ``[B, ...]`` gradients of the critic w.r.t. the interpolates (e.g. from
            ``torch.autograd.grad(..., create_graph=True)`` or ``torch.func.grad``).
        impl: ``"auto"`` (Triton on CUDA where installed, the reference elsewhere, announced
            once), ``"triton"`` or ``"torch"``.

    Returns:
        0-d penalty in ``g.dtype`` (fp32 for fp32 input), differentiable (twice) w.r.t. ``g``.
    """
    if resolve_impl(impl, g, GP_NORM_PENALTY) == "triton":
        return triton_module(GP_NORM_PENALTY).triton_gp_norm_penalty(g)
    return torch_gp_norm_penalty(g)
