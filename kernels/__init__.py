"""Fused GAN kernels (Triton) with pure-PyTorch references.

* :func:`spectral_norm` - drop-in for ``torch.nn.utils.parametrizations.spectral_norm`` whose
  training forward (power iteration + sigma + W / sigma) is one Triton launch
  (``gan_accel::spectral_norm_fwd``) and whose backward is one more
  (``gan_accel::spectral_norm_bwd``).
* :func:`gp_norm_penalty` - WGAN-GP penalty ``mean_i((||g_i||_2 - 1)^2)`` over per-sample
  gradients, fused forward/backward (``gan_accel::gp_norm_penalty`` and
  ``gan_accel::gp_norm_penalty_backward``), differentiable twice.

Every public op takes ``impl="auto" | "triton" | "torch"``; see :func:`resolve_impl`.
"""

from ._launch import resolve_impl, triton_interpret_enabled
from .fused_spectral_norm import (
    SpectralNorm,
    spectral_norm,
    spectral_norm_backward,
    spectral_norm_forward,
    torch_spectral_norm,
    torch_spectral_norm_backward,
    torch_spectral_norm_power_iteration_,
    triton_spectral_norm,
)
from .grad_penalty import (
    gp_norm_penalty,
    gp_norm_penalty_backward,
    gp_norm_penalty_forward,
    torch_gp_norm_penalty,
    triton_gp_norm_penalty,
)

__all__ = [
    "SpectralNorm",
    "gp_norm_penalty",
    "gp_norm_penalty_backward",
    "gp_norm_penalty_forward",
    "resolve_impl",
    "spectral_norm",
    "spectral_norm_backward",
    "spectral_norm_forward",
    "torch_gp_norm_penalty",
    "torch_spectral_norm",
    "torch_spectral_norm_backward",
    "torch_spectral_norm_power_iteration_",
    "triton_gp_norm_penalty",
    "triton_interpret_enabled",
    "triton_spectral_norm",
]
