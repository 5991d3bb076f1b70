"""Launch helpers shared by the ops in this package: implementation dispatch, tile
configurations, the eager direct path, dtypes.

Every public op takes ``impl="auto" | "triton" | "torch"``. :func:`resolve_impl` turns that
into a concrete choice:

* ``"auto"``: Triton when the tensor lives on a CUDA device, the pure-PyTorch reference
  everywhere else. The choice is announced once per op per process (``warnings.warn``), so a
  fallback is never silent.
* ``"triton"``: Triton. On a non-CUDA tensor this is only allowed when the Triton interpreter
  is enabled (``TRITON_INTERPRET=1`` set before ``triton`` was imported); otherwise a clear
  ``RuntimeError`` is raised.
* ``"torch"``: the reference.

Tile configurations (:class:`Tiles`, :func:`tile_config`): the launchers size their blocks
and choose between one program and several from a :class:`TileConfig`. By default CUDA
tensors get :attr:`Tiles.CUDA` and the interpreter gets :attr:`Tiles.INTERPRETER` (few, large
numpy blocks, its fastest way through). :func:`use_tiles` (or the environment variable
``GAN_ACCEL_TILES=cuda|tiny|interpreter``) forces one, so the CPU tests run the tile loops,
program counts and ragged tails the GPU runs (``cuda``), or every loop with several
iterations and a ragged last one (``tiny``).
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

try:  # trace-time hook so the once-per-op announcement also happens under torch.compile
    from torch._dynamo.comptime import comptime
except Exception:  # pragma: no cover - very old / stripped torch builds
    comptime = None

__all__ = ["IMPLS", "TILES_ENV", "TRITON_MISSING", "ImplChoiceWarning", "TileConfig", "Tiles",
           "acc_dtype", "has_triton",
           "bind_signatures", "cdiv", "check_triton_device", "eager_direct_ok",
           "next_power_of_2", "num_warps_for", "prev_power_of_2", "resolve_impl", "tile_config",
           "tl_dtype", "triton_interpret_enabled", "use_tiles"]

IMPLS = ("auto", "triton", "torch")  # every public op's ``impl`` argument
_VALID = IMPLS
_announced: set[str] = set()
_lock = threading.Lock()


class ImplChoiceWarning(UserWarning):
    """Emitted once per op per process when ``impl="auto"`` picks an implementation."""


TRITON_MISSING = ("the fused kernels need the triton package, which is not installed here (it "
                  "ships with PyTorch's CUDA wheels on Linux); install it with 'pip install "
                  "triton', or use the PyTorch reference ops (impl='torch' / --kernels torch)")


def has_triton() -> bool:
    """True when ``import triton`` works. Cached: decides only which path runs."""
    global _HAS_TRITON
    if _HAS_TRITON is None:
        try:
            import triton  # noqa: F401
        except ImportError:
            _HAS_TRITON = False
        else:
            _HAS_TRITON = True
    return _HAS_TRITON


_HAS_TRITON: bool | None = None


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
    elif device_type == "cuda":
        why = "Triton is not installed"
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
        RuntimeError: for ``impl="triton"`` without Triton installed, or on a non-CUDA tensor
            without ``TRITON_INTERPRET=1``.
    """
    if impl not in _VALID:
        raise ValueError(f"{op_name}: impl must be one of {_VALID}, got {impl!r}")
    device = _device_of(tensor_or_device)
    if impl == "auto":
        choice = "triton" if device.type == "cuda" and has_triton() else "torch"
        device_type = device.type
        if torch.compiler.is_compiling():
            # warnings.warn would graph-break under Dynamo; comptime runs the announcement at
            # trace time, without touching the graph.
            if comptime is not None:
                comptime(_announce_at_trace_time)
        else:
            _announce(op_name, choice, device_type)
        return choice
    if impl == "triton" and not has_triton():
        raise RuntimeError(f"{op_name}: impl='triton': {TRITON_MISSING}")
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


_TL_DTYPES: dict = {}


def tl_dtype(dtype: torch.dtype):
    """The Triton language dtype of an accumulation dtype."""
    if not _TL_DTYPES:
        import triton.language as tl

        _TL_DTYPES.update({torch.float32: tl.float32, torch.float64: tl.float64})
    return _TL_DTYPES[dtype]


def check_triton_device(t: torch.Tensor, what: str) -> None:
    """RuntimeError unless ``t`` can run a Triton kernel (CUDA, or the interpreter on CPU)."""
    if t.device.type != "cuda" and not triton_interpret_enabled():
        raise RuntimeError(
            f"{what}: the Triton kernel needs a CUDA tensor (got {t.device.type}); on CPU it "
            f"only runs under the Triton interpreter: set TRITON_INTERPRET=1 before importing "
            f"triton."
        )


# --------------------------------------------------------------------------------------------
# Tile configurations
# --------------------------------------------------------------------------------------------

TILES_ENV = "GAN_ACCEL_TILES"  # auto (default) | cuda | tiny | interpreter


class Tiles(enum.Enum):
    """The tile configurations the launchers can run with."""

    CUDA = "cuda"  # what a GPU runs
    INTERPRETER = "interpreter"  # few, large blocks: each block op is one numpy call
    TINY = "tiny"  # tiny tiles and low thresholds: several iterations and ragged tails everywhere


@dataclass(frozen=True)
class TileConfig:
    """Block sizes (elements, powers of two) and the one-program / several-programs thresholds.

    Spectral norm (``W_mat`` is ``[H, K]``): ``sn_tile`` elements per ``[BLOCK_H, BLOCK_K]``
    tile, at most ``sn_block_h`` rows; vectors in blocks of ``sn_block_v``. Matrices with at
    least ``sn_multi_min`` elements run on several programs: ``sn_programs`` is the grid size
    aimed at, column programs take ``sn_min_cols`` .. ``sn_max_cols`` columns, elementwise
    tiles ``sn_ew_rows`` rows; partial sums are added ``sn_block_p`` at a time.

    Gradient penalty (``g`` is ``[B, N]``): up to ``gp_single_max`` elements one program does
    the forward in ``gp_single_tile``-element tiles; beyond, one program per
    ``gp_tile``-element row block, its partial sums added ``gp_block_p`` at a time by the last
    program. Rows are read ``gp_block_n`` columns at a time (``gp_bwd_block_n`` /
    ``gp_bwd_tile`` in the backward). ``num_stages``: software-pipelining depth of the loops
    that stream the big operand (``tl.range``; ignored by the interpreter).
    """

    name: str
    sn_tile: int
    sn_block_h: int
    sn_block_v: int
    sn_multi_min: int
    sn_programs: int
    sn_min_cols: int
    sn_max_cols: int
    sn_ew_rows: int
    sn_block_p: int
    gp_block_n: int
    gp_tile: int
    gp_single_max: int
    gp_single_tile: int
    gp_block_p: int
    gp_bwd_block_n: int
    gp_bwd_tile: int
    num_stages: int


TILE_CONFIGS: dict[Tiles, TileConfig] = {
    # sn_tile 4096 (8 warps: 16 fp32 tile values per thread): ptxas for sm_90a reports no
    # spills at 3 pipeline stages, where 8192 spilled ~660 bytes per thread in the one-program
    # kernels. 264 programs = two per SM on a 132-SM H100 / H200. The seed D's largest weight
    # (128 x 1024 = 2^17) stays on one program: one launch each way.
    Tiles.CUDA: TileConfig(
        name="cuda", sn_tile=4096, sn_block_h=32, sn_block_v=1024, sn_multi_min=2**18,
        sn_programs=264, sn_min_cols=32, sn_max_cols=256, sn_ew_rows=16, sn_block_p=1024,
        gp_block_n=2048, gp_tile=2048, gp_single_max=2**16, gp_single_tile=8192,
        gp_block_p=1024, gp_bwd_block_n=1024, gp_bwd_tile=2048, num_stages=3),
    Tiles.INTERPRETER: TileConfig(
        name="interpreter", sn_tile=65536, sn_block_h=64, sn_block_v=65536, sn_multi_min=2**62,
        sn_programs=8, sn_min_cols=64, sn_max_cols=4096, sn_ew_rows=64, sn_block_p=1024,
        gp_block_n=4096, gp_tile=65536, gp_single_max=2**16, gp_single_tile=65536,
        gp_block_p=1024, gp_bwd_block_n=4096, gp_bwd_tile=65536, num_stages=1),
    Tiles.TINY: TileConfig(
        name="tiny", sn_tile=32, sn_block_h=4, sn_block_v=8, sn_multi_min=64, sn_programs=4,
        sn_min_cols=2, sn_max_cols=8, sn_ew_rows=2, sn_block_p=2, gp_block_n=8, gp_tile=16,
        gp_single_max=48, gp_single_tile=16, gp_block_p=2, gp_bwd_block_n=8, gp_bwd_tile=16,
        num_stages=2),
}

_forced: TileConfig | None = None  # set only inside use_tiles()


def _as_tile_config(tiles: Tiles | str | TileConfig, what: str) -> TileConfig:
    if isinstance(tiles, TileConfig):
        return tiles
    try:
        return TILE_CONFIGS[Tiles(tiles.strip().lower() if isinstance(tiles, str) else tiles)]
    except (ValueError, AttributeError):
        choices = ", ".join(t.value for t in Tiles)
        raise ValueError(f"{what}: unknown tile configuration {tiles!r}; choose from "
                         f"{choices}") from None


@contextlib.contextmanager
def use_tiles(tiles: Tiles | str | TileConfig) -> Iterator[TileConfig]:
    """Force a tile configuration for every launch inside the ``with`` block (process-wide,
    so the autograd engine's threads see it too); restores the previous one on exit."""
    global _forced
    config = _as_tile_config(tiles, "use_tiles")
    previous, _forced = _forced, config
    try:
        yield config
    finally:
        _forced = previous


def tile_config(device: torch.device) -> TileConfig:
    """The configuration a launch on ``device`` uses: :func:`use_tiles` if active, else
    ``$GAN_ACCEL_TILES`` if set (and not ``auto``), else CUDA on CUDA and the interpreter's
    elsewhere."""
    if _forced is not None:
        return _forced
    env = os.environ.get(TILES_ENV, "").strip().lower()
    if env and env != "auto":
        return _as_tile_config(env, f"${TILES_ENV}")
    return TILE_CONFIGS[Tiles.CUDA if device.type == "cuda" else Tiles.INTERPRETER]


def prev_power_of_2(n: int) -> int:
    """The largest power of two <= ``n`` (1 for ``n <= 1``)."""
    return 1 << (max(int(n), 1).bit_length() - 1)


# plain Python (triton's own are constexpr-function wrappers, several times slower per call)
def next_power_of_2(n: int) -> int:
    """The smallest power of two >= ``n`` (1 for ``n <= 1``)."""
    return 1 << (max(int(n), 1) - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive ints."""
    return -(-a // b)


def num_warps_for(tile_elements: int) -> int:
    """Warps for a program whose largest live tile has ``tile_elements`` fp32 values."""
    return 8 if tile_elements >= 4096 else 4


# --------------------------------------------------------------------------------------------
# The eager direct path
# --------------------------------------------------------------------------------------------

_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _dispatch_modes_active() -> bool:
    try:
        if torch._C._len_torch_dispatch_stack():
            return True
        keys = torch._C._TorchDispatchModeKey.__members__.values()
        return any(torch._C._get_dispatch_mode(k) is not None for k in keys)
    except AttributeError:  # a torch without these hooks: take the registered-op path
        return True


def bind_signatures(*functions: type[torch.autograd.Function]) -> None:
    """Pin each Function's ``forward`` signature (``__signature__``): ``Function.apply``
    binds its arguments with ``inspect.signature(forward)`` on every call when the Function
    has a ``setup_context``, and rebuilding that signature each time is a measurable part of
    the eager host cost of a small op."""
    for fn in functions:
        fn.forward.__signature__ = inspect.signature(fn.forward)


def eager_direct_ok(*tensors: torch.Tensor) -> bool:
    """True when an autograd.Function's forward/backward may call a launcher directly instead
    of through its ``torch.ops.gan_accel`` op: plain tensors, not under ``torch.compile``,
    no dispatch mode (fake / proxy / functional tensors, FlopCounterMode, ...). Anything that
    traces, fakes or intercepts ops gets the registered op, with its fake kernel and schema."""
    if torch.compiler.is_compiling():
        return False
    if any(type(t) not in _PLAIN_TYPES for t in tensors if t is not None):
        return False
    return not _dispatch_modes_active()
