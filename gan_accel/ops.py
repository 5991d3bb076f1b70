"""The two hot operations that have fused Triton kernels, as an injectable pair.

Models and losses are built against :class:`Ops`. :data:`TORCH_OPS` is plain PyTorch (its
spectral norm is PyTorch's parametrization, its penalty the kernels' pure-PyTorch
reference); :func:`build_ops` turns ``--kernels`` into the fused versions from
:mod:`gan_accel.kernels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .errors import UserError
from .kernels._launch import IMPLS, TRITON_MISSING, has_triton, triton_interpret_enabled
from .kernels.ops import gp_norm_penalty, spectral_norm
from .kernels.reference import torch_gp_norm_penalty


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


def check_kernels(choice: str, device: torch.device) -> None:
    """UserError, before any work, when ``--kernels choice`` cannot run on ``device``."""
    if choice not in IMPLS:
        raise UserError(f"--kernels {choice!r} is not one of {', '.join(IMPLS)}")
    if choice == "triton" and not has_triton():
        raise UserError(f"--kernels triton: {TRITON_MISSING}")
    if choice == "triton" and device.type != "cuda" and not triton_interpret_enabled():
        raise UserError(f"--kernels triton needs a CUDA device (this run is on {device.type}); "
                        "use --kernels auto or torch, or set TRITON_INTERPRET=1 to run the "
                        "kernels in Triton's (slow) interpreter")


def build_ops(choice: str, device: torch.device, log=print) -> Ops:
    """The Ops for ``--kernels`` (auto: Triton on CUDA where it is installed, PyTorch
    elsewhere, said once)."""
    check_kernels(choice, device)
    if choice == "torch":
        return TORCH_OPS
    if choice == "auto" and device.type != "cuda":
        log(f"kernels: auto -> PyTorch reference ops on {device.type} "
            "(the fused Triton kernels run on CUDA; --kernels triton forces them)")
        return TORCH_OPS
    if choice == "auto" and not has_triton():
        log("kernels: auto -> PyTorch reference ops (Triton is not installed; "
            "'pip install triton' enables the fused kernels)")
        return TORCH_OPS
    return Ops(name="triton",
               spectral_norm=partial(spectral_norm, impl="triton"),
               gp_norm_penalty=partial(gp_norm_penalty, impl="triton"))
