"""Launch helpers shared by the ops in this package: implementation dispatch, dtypes.

Every public op takes ``impl="auto" | "triton" | "torch"``. :func:`resolve_impl` turns that
into a concrete choice:

* ``"auto"``: Triton when the tensor lives on a CUDA device, the pure-PyTorch reference
  everywhere else. The choice is announced once per op per process (``warnings.warn``), so a
  fallback is never silent.
* ``"triton"``: Triton. On a non-CUDA tensor this is only allowed when the Triton interpreter
  is enabled (``TRITON_INTERPRET=1`` set before ``triton`` was imported); otherwise a clear
  ``RuntimeError`` is raised.
* ``"torch"``: the reference.
"""

from __future__ import annotations

import os
import threading
import warnings

import torch

try:  # trace-time hook so the once-per-op announcement also happens under torch.compile
    from torch._dynamo.comptime import comptime
except Exception:  # pragma: no cover - very old / stripped torch builds
    comptime = None

__all__ = ["IMPLS", "ImplChoiceWarning", "acc_dtype", "check_triton_device", "resolve_impl",
           "tl_dtype", "triton_interpret_enabled"]

IMPLS = ("auto", "triton", "torch")  # every public op's ``impl`` argument
_VALID = IMPLS
_announced: set[str] = set()
_lock = threading.Lock()


class ImplChoiceWarning(UserWarning):
    """Emitted once per op per process when ``impl="auto"`` picks an implementation."""


def triton_interpret_enabled() -> bool:
    """Return True when the Triton interpreter (``TRITON_INTERPRET=1``) is switched on."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _device_of(tensor_or_device: torch.Tensor | torch.device | str) -> torch.device:
    if isinstance(tensor_or_device, torch.Tensor):
        return tensor_or_device.device
    return torch.device(tensor_or_device)


def _announce(op_name: str, choice: str, device_type: str) -> None:
    with _lock:
        if op_name in _announced:
            return
        _announced.add(op_name)
    if choice == "triton":
        why = f"tensor on {device_type}"
    else:
        why = f"tensor on {device_type}, Triton is only auto-selected for CUDA tensors"
    warnings.warn(
        f"gan_accel.kernels: {op_name} impl='auto' -> running the {choice} implementation ({why}). "
        f"Pass impl='torch' or impl='triton' to choose explicitly. (Shown once per op.)",
        ImplChoiceWarning,
        stacklevel=3,
    )


def _announce_at_trace_time(ctx) -> None:
    # comptime callbacks may not close over variables: read resolve_impl's locals instead
    _announce(
        *(ctx.get_local(n).as_python_constant() for n in ("op_name", "choice", "device_type"))
    )


def resolve_impl(
    impl: str, tensor_or_device: torch.Tensor | torch.device | str, op_name: str
) -> str:
    """Resolve an ``impl`` argument to ``"triton"`` or ``"torch"``.

    Args:
        impl: ``"auto"``, ``"triton"`` or ``"torch"``.
        tensor_or_device: the tensor the op runs on (or its device).
        op_name: name of the op, used for the once-per-op announcement and error messages.

    Returns:
        ``"triton"`` or ``"torch"``.

    Raises:
        ValueError: on an unknown ``impl``.
        RuntimeError: for ``impl="triton"`` on a non-CUDA tensor without ``TRITON_INTERPRET=1``.
    """
    if impl not in _VALID:
        raise ValueError(f"{op_name}: impl must be one of {_VALID}, got {impl!r}")
    device = _device_of(tensor_or_device)
    if impl == "auto":
        choice = "triton" if device.type == "cuda" else "torch"
        device_type = device.type
        if torch.compiler.is_compiling():
            # warnings.warn would graph-break under Dynamo; comptime runs the announcement at
            # trace time, without touching the graph.
            if comptime is not None:
                comptime(_announce_at_trace_time)
        else:
            _announce(op_name, choice, device_type)
        return choice
    if impl == "triton" and device.type != "cuda" and not triton_interpret_enabled():
        raise RuntimeError(
            f"{op_name}: impl='triton' needs a CUDA tensor, got one on {device.type!r}. Running "
            f"Triton kernels on {device.type} requires the Triton interpreter: set the environment "
            f"variable TRITON_INTERPRET=1 before triton is imported, or use impl='torch'/'auto'."
        )
    return impl


def acc_dtype(t: torch.Tensor) -> torch.dtype:
    """Accumulation dtype: fp64 for fp64 tensors (gradcheck), fp32 otherwise."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def tl_dtype(dtype: torch.dtype):
    """The Triton language dtype of an accumulation dtype."""
    import triton.language as tl

    return {torch.float32: tl.float32, torch.float64: tl.float64}[dtype]


def check_triton_device(t: torch.Tensor, what: str) -> None:
    """RuntimeError unless ``t`` can run a Triton kernel (CUDA, or the interpreter on CPU)."""
    if t.device.type != "cuda" and not triton_interpret_enabled():
        raise RuntimeError(
            f"{what}: the Triton kernel needs a CUDA tensor (got {t.device.type}); on CPU it "
            f"only runs under the Triton interpreter: set TRITON_INTERPRET=1 before importing "
            f"triton."
        )
