"""Fused GAN kernels (Triton) with pure-PyTorch references.

* :func:`spectral_norm` - drop-in for ``torch.nn.utils.parametrizations.spectral_norm`` whose
  training forward (power iteration + sigma + W / sigma) is one Triton launch
  (``gan_accel::spectral_norm_fwd``) and whose backward is one more
  (``gan_accel::spectral_norm_bwd``).
* :func:`gp_norm_penalty` - WGAN-GP penalty ``mean_i((||g_i||_2 - 1)^2)`` over per-sample
  gradients, fused forward/backward (``gan_accel::gp_norm_penalty`` and
  ``gan_accel::gp_norm_penalty_backward``), differentiable twice.

Every public op takes ``impl="auto" | "triton" | "torch"``; see :func:`resolve_impl`.
Importing this package needs only torch: the public ops (:mod:`.ops`) and the references
(:mod:`.reference`) load eagerly, the Triton modules when a Triton path is selected (or when
one of their names below is asked for), so the toolkit runs where Triton is not installed.
"""

import importlib

from ._launch import has_triton, resolve_impl, triton_interpret_enabled
from .ops import SpectralNorm, gp_norm_penalty, spectral_norm
from .reference import (
    torch_gp_norm_penalty,
    torch_spectral_norm,
    torch_spectral_norm_backward,
    torch_spectral_norm_power_iteration_,
)

# names that live in the Triton modules, loaded on first access
_TRITON_NAMES = {
    "spectral_norm_backward": "fused_spectral_norm",
    "spectral_norm_forward": "fused_spectral_norm",
    "triton_spectral_norm": "fused_spectral_norm",
    "gp_norm_penalty_backward": "grad_penalty",
    "gp_norm_penalty_forward": "grad_penalty",
    "triton_gp_norm_penalty": "grad_penalty",
}


def __getattr__(name: str):
    if name in _TRITON_NAMES:
        return getattr(importlib.import_module(f".{_TRITON_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SpectralNorm",
    "gp_norm_penalty",
    "gp_norm_penalty_backward",
    "gp_norm_penalty_forward",
    "has_triton",
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
