"""Fused WGAN-GP gradient-penalty norm: mean_i((||g_i||_2 - 1)^2).

``g`` is ``dD/dx_hat`` for a batch, ``[B, ...]``, flattened per sample to ``[B, N]``::

    n_i     = ||g_i||_2
    penalty = (1/B) sum_i (n_i - 1)^2
    dL/dg_i = grad_out * 2 (n_i - 1) / (B n_i) * g_i          (0 where n_i == 0)

which is also what ``torch.linalg.vector_norm``'s subgradient gives at 0.

Triton path, one launch each way:

* forward: small problems (up to ``TileConfig.gp_single_max`` elements: batch 64 of 28x28 on
  CUDA) run on ONE program that walks every row block, with no scratch and no zero fill.
  Larger ones give each program a few rows: it computes their norms (kept for backward) and
  its partial sum of ``(n_i - 1)^2``; the last program to finish (an atomic ticket) adds the
  partials in a fixed order, so the result is deterministic (run to run and for any number
  of programs that finish in any order). That ticket is a fresh 4-byte zero tensor per call.
  Rows may have any stride, 0 included (an expanded batch).
* backward: elementwise over ``[B, N]`` tiles, ``dg_i = c_i g_i`` with one coefficient per row.

In plain eager calls the autograd.Functions run the launchers directly
(:func:`~._launch.eager_direct_ok`), skipping the custom ops' dispatcher round trips; anything
that traces or fakes tensors (``torch.compile``, ``opcheck``) gets the registered ops.

Ops (namespace ``gan_accel``), both ``torch.library.custom_op`` with fake kernels and autograd:

* ``gan_accel::gp_norm_penalty(Tensor g) -> (Tensor penalty, Tensor norms)`` (norms in fp32,
  fp64 for fp64 ``g``).
* ``gan_accel::gp_norm_penalty_backward(Tensor g, Tensor norms, Tensor grad_penalty,
  Tensor? grad_norms) -> Tensor``; its own autograd is a torch formula, so the penalty is
  differentiable twice (``torch.autograd.gradgradcheck`` passes).

The double backward of the *critic* (WGAN-GP's ``d penalty / d params``) only needs the
first-order backward above; it composes with ``torch.autograd.grad(create_graph=True)``,
``torch.func.grad`` and ``torch.compile(fullgraph=True)``.

Reference: ``torch_gp_norm_penalty`` in :mod:`.reference` (pure PyTorch), paired with
``triton_gp_norm_penalty`` here. This module needs Triton; the public op (:mod:`.ops`) loads it
only when the Triton path is chosen.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._launch import (
    TileConfig,
    acc_dtype,
    bind_signatures,
    cdiv,
    check_triton_device,
    eager_direct_ok,
    next_power_of_2,
    num_warps_for,
    tile_config,
    tl_dtype,
)
from ._math import ieee_div, ieee_sqrt

__all__ = [
    "gp_norm_penalty_backward",
    "gp_norm_penalty_forward",
    "triton_gp_norm_penalty",
]


# --------------------------------------------------------------------------------------------
# Triton kernels
# --------------------------------------------------------------------------------------------


# n_i <- ||g_i||_2 for the rows r0 .. r0 + ROWS (stored); returns (n_i - 1)^2 (0 past row B)
@triton.jit
def _gp_row_block(
    g_ptr,
    norms_ptr,
    r0,
    B,
    N,
    stride_row,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    FULL_ROW: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    rows = r0 + tl.arange(0, ROWS)
    rmask = rows < B
    row_off = rows.to(tl.int64) * stride_row  # stride 0: an expanded batch, every row the same
    if FULL_ROW:  # the whole row in one block: no column loop
        cols = tl.arange(0, BLOCK_N)
        mask = rmask[:, None] & (cols < N)[None, :]
        x = tl.load(g_ptr + row_off[:, None] + cols[None, :].to(tl.int64), mask=mask, other=0.0)
        x = x.to(ACC)
        sumsq = tl.sum(x * x, axis=1)
    else:
        acc = tl.zeros([ROWS, BLOCK_N], dtype=ACC)
        for n0 in tl.range(0, N, BLOCK_N, num_stages=NUM_STAGES):
            cols = n0 + tl.arange(0, BLOCK_N)
            mask = rmask[:, None] & (cols < N)[None, :]
            x = tl.load(g_ptr + row_off[:, None] + cols[None, :].to(tl.int64), mask=mask,
                        other=0.0)
            x = x.to(ACC)
            acc += x * x
        sumsq = tl.sum(acc, axis=1)
    norm = ieee_sqrt(sumsq)
    tl.store(norms_ptr + rows, norm, mask=rmask)
    d = tl.where(rmask, norm - 1.0, 0.0)
    return d * d


# n_i <- ||g_i||_2 ;  penalty <- (1/B) sum_i (n_i - 1)^2. SINGLE: one program walks every row
# block. Otherwise one program per ROWS rows; the last to finish (an atomic ticket) adds the
# per-program partials in program order, so the sum is deterministic.
@triton.jit
def _gp_fwd_kernel(
    g_ptr,
    norms_ptr,
    partial_ptr,
    ticket_ptr,
    loss_ptr,
    B,
    N,
    stride_row,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    FULL_ROW: tl.constexpr,
    SINGLE: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    if SINGLE:
        total = tl.zeros([ROWS], dtype=ACC)
        if FULL_ROW:  # the row loop is the only loop: pipeline it
            for r0 in tl.range(0, B, ROWS, num_stages=NUM_STAGES):
                total += _gp_row_block(g_ptr, norms_ptr, r0, B, N, stride_row, ROWS, BLOCK_N,
                                       FULL_ROW, NUM_STAGES, ACC)
        else:
            for r0 in range(0, B, ROWS):
                total += _gp_row_block(g_ptr, norms_ptr, r0, B, N, stride_row, ROWS, BLOCK_N,
                                       FULL_ROW, NUM_STAGES, ACC)
        loss = ieee_div(tl.sum(total, axis=0), B * 1.0)
        tl.store(loss_ptr, loss.to(loss_ptr.dtype.element_ty))
    else:
        pid = tl.program_id(0)
        d2 = _gp_row_block(g_ptr, norms_ptr, pid * ROWS, B, N, stride_row, ROWS, BLOCK_N,
                           FULL_ROW, NUM_STAGES, ACC)
        tl.store(partial_ptr + pid, tl.sum(d2, axis=0))
        tl.debug_barrier()
        # acq_rel: our partial is published before the ticket, the last taker sees them all
        ticket = tl.atomic_add(ticket_ptr, 1, sem="acq_rel")
        n_prog = tl.num_programs(0)
        if ticket == n_prog - 1:
            total = tl.zeros([BLOCK_P], dtype=ACC)
            for p0 in range(0, n_prog, BLOCK_P):
                offs = p0 + tl.arange(0, BLOCK_P)
                total += tl.load(
                    partial_ptr + offs, mask=offs < n_prog, other=0.0, cache_modifier=".cg"
                )
            loss = ieee_div(tl.sum(total, axis=0), B * 1.0)
            tl.store(loss_ptr, loss.to(loss_ptr.dtype.element_ty))


# dg_i <- c_i g_i,  c_i = (2 grad_out (n_i - 1) / B + grad_norms_i) / n_i  (0 where n_i == 0)
@triton.jit
def _gp_bwd_kernel(
    g_ptr,
    norms_ptr,
    gout_ptr,
    gnorms_ptr,
    dg_ptr,
    B,
    N,
    stride_row,
    stride_dg,
    HAS_GNORMS: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_r * ROWS + tl.arange(0, ROWS)
    rmask = rows < B
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = rmask[:, None] & (cols < N)[None, :]
    n = tl.load(norms_ptr + rows, mask=rmask, other=0.0)
    gout = tl.load(gout_ptr).to(ACC)
    num = ieee_div(2.0 * gout * (n - 1.0), B * 1.0)
    if HAS_GNORMS:
        num += tl.load(gnorms_ptr + rows, mask=rmask, other=0.0).to(ACC)
    coef = tl.where(n > 0.0, ieee_div(num, tl.where(n > 0.0, n, 1.0)), 0.0)
    r64 = rows.to(tl.int64)
    c64 = cols.to(tl.int64)
    x = tl.load(g_ptr + r64[:, None] * stride_row + c64[None, :], mask=mask, other=0.0)
    dg = coef[:, None] * x.to(ACC)
    tl.store(
        dg_ptr + r64[:, None] * stride_dg + c64[None, :], dg.to(dg_ptr.dtype.element_ty), mask=mask
    )


# --------------------------------------------------------------------------------------------
# Launchers
# --------------------------------------------------------------------------------------------


def _as_rows(g: Tensor) -> Tensor:
    """``g`` viewed as ``[B, N]`` rows; copied only when a row's elements are not adjacent.
    The row stride may be anything, 0 included (an expanded batch)."""
    if g.ndim < 1:
        raise ValueError("gp_norm_penalty: g must have a batch dimension, got a 0-d tensor")
    g2 = g.reshape(g.shape[0], -1)
    if g2.shape[1] > 1 and g2.stride(1) != 1:
        g2 = g2.contiguous()
    return g2


def _fwd_config(b: int, n: int, cfg: TileConfig) -> tuple[int, int, bool]:
    """(ROWS, BLOCK_N, single program?) of the forward kernel."""
    block_n = min(next_power_of_2(n), cfg.gp_block_n)
    single = b * n <= cfg.gp_single_max
    tile = cfg.gp_single_tile if single else cfg.gp_tile
    rows = min(next_power_of_2(b), max(1, tile // block_n))
    return rows, block_n, single or cdiv(b, rows) == 1


def gp_norm_penalty_forward(g: Tensor) -> tuple[Tensor, Tensor]:
    """Launch the fused penalty forward: one single-program launch up to
    ``TileConfig.gp_single_max`` elements (batch 64 of 28x28); beyond, one multi-program
    launch plus a 4-byte zero fill for its ticket.

    Args:
        g: ``[B, ...]`` per-sample gradients (any float dtype, any strides).

    Returns:
        ``(penalty, norms)``: ``penalty`` is 0-d in ``g.dtype``, ``norms`` is ``[B]`` fp32
        (fp64 for fp64 input).
    """
    check_triton_device(g, "gp_norm_penalty_forward")
    g2 = _as_rows(g)
    b, n = g2.shape
    acc = acc_dtype(g)
    norms = torch.empty(b, device=g.device, dtype=acc)
    loss = torch.empty((), device=g.device, dtype=g.dtype)
    if b == 0:
        loss.fill_(float("nan"))  # mean over an empty batch, as torch
        return loss, norms
    cfg = tile_config(g.device)
    rows, block_n, single = _fwd_config(b, n, cfg)
    n_prog = 1 if single else cdiv(b, rows)
    if single:
        partial = ticket = norms  # unused
    else:
        partial = torch.empty(n_prog, device=g.device, dtype=acc)
        ticket = torch.zeros(1, device=g.device, dtype=torch.int32)
    _gp_fwd_kernel[(n_prog,)](
        g2,
        norms,
        partial,
        ticket,
        loss,
        b,
        n,
        g2.stride(0),
        ROWS=rows,
        BLOCK_N=block_n,
        BLOCK_P=min(next_power_of_2(n_prog), cfg.gp_block_p),
        FULL_ROW=n <= block_n,
        SINGLE=single,
        NUM_STAGES=cfg.num_stages,
        ACC=tl_dtype(acc),
        num_warps=num_warps_for(rows * block_n),
    )
    return loss, norms


def gp_norm_penalty_backward(
    g: Tensor, norms: Tensor, grad_penalty: Tensor, grad_norms: Tensor | None = None
) -> Tensor:
    """Launch the fused penalty backward (one launch).

    Args:
        g: the forward input ``[B, ...]``.
        norms: ``[B]`` row norms from :func:`gp_norm_penalty_forward`.
        grad_penalty: 0-d gradient of the loss w.r.t. the penalty.
        grad_norms: optional ``[B]`` gradient w.r.t. ``norms`` (only in higher-order use).

    Returns:
        ``dL/dg`` shaped like ``g``: ``(2 grad_penalty (n_i - 1)/B + grad_norms_i) g_i / n_i``,
        0 for rows with ``n_i == 0``.
    """
    check_triton_device(g, "gp_norm_penalty_backward")
    g2 = _as_rows(g)
    b, n = g2.shape
    dg = torch.empty((b, n), device=g.device, dtype=g.dtype)
    if b == 0 or n == 0:
        return dg.reshape(g.shape)
    cfg = tile_config(g.device)
    block_n = min(next_power_of_2(n), cfg.gp_bwd_block_n)
    rows = min(next_power_of_2(b), max(1, cfg.gp_bwd_tile // block_n))
    grid = (cdiv(b, rows), cdiv(n, block_n))
    has_gn = grad_norms is not None
    gn = grad_norms.contiguous() if has_gn else norms
    _gp_bwd_kernel[grid](
        g2,
        norms.contiguous(),
        grad_penalty.reshape(1),
        gn,
        dg,
        b,
        n,
        g2.stride(0),
        n,
        HAS_GNORMS=has_gn,
        ROWS=rows,
        BLOCK_N=block_n,
        ACC=tl_dtype(acc_dtype(g)),
        num_warps=4,
    )
    return dg.reshape(g.shape)


# --------------------------------------------------------------------------------------------
# Operator registration
# --------------------------------------------------------------------------------------------


@torch.library.custom_op("gan_accel::gp_norm_penalty", mutates_args=())
def _gp_fwd_op(g: Tensor) -> tuple[Tensor, Tensor]:
    return gp_norm_penalty_forward(g)


@_gp_fwd_op.register_fake
def _gp_fwd_fake(g):
    return g.new_empty(()), g.new_empty((g.shape[0],), dtype=acc_dtype(g))


@torch.library.custom_op("gan_accel::gp_norm_penalty_backward", mutates_args=())
def _gp_bwd_op(g: Tensor, norms: Tensor, grad_penalty: Tensor, grad_norms: Tensor | None) -> Tensor:
    return gp_norm_penalty_backward(g, norms, grad_penalty, grad_norms)


@_gp_bwd_op.register_fake
def _gp_bwd_fake(g, norms, grad_penalty, grad_norms):
    return torch.empty_like(g, memory_format=torch.contiguous_format)


def _gp_fwd_setup(ctx, inputs, output):
    (g,) = inputs
    _, norms = output
    ctx.save_for_backward(g, norms)
    ctx.set_materialize_grads(False)


def _gp_backward_inputs(ctx, grad_penalty):
    g, norms = ctx.saved_tensors
    if grad_penalty is None:
        grad_penalty = torch.zeros((), device=g.device, dtype=g.dtype)
    return g, norms, grad_penalty


def _gp_fwd_backward(ctx, grad_penalty, grad_norms):
    if grad_penalty is None and grad_norms is None:
        return None
    g, norms, grad_penalty = _gp_backward_inputs(ctx, grad_penalty)
    return torch.ops.gan_accel.gp_norm_penalty_backward(g, norms, grad_penalty, grad_norms)


_gp_fwd_op.register_autograd(_gp_fwd_backward, setup_context=_gp_fwd_setup)


def _gp_bwd_setup(ctx, inputs, output):
    g, norms, grad_penalty, grad_norms = inputs
    ctx.has_gn = grad_norms is not None
    ctx.save_for_backward(g, norms, grad_penalty, grad_norms if ctx.has_gn else None)
    ctx.set_materialize_grads(False)


def _gp_bwd_backward(ctx, r):
    # dg = c * g with c_i = (a (n_i - 1) + gn_i) / n_i, a = 2 grad_penalty / B  (torch formula):
    #   d/dg = r c ;  d/dn_i = <r_i, g_i> (a - gn_i) / n_i^2 ;
    #   d/dgrad_penalty = sum_i <r_i, g_i> 2 (n_i - 1) / (B n_i) ;  d/dgn_i = <r_i, g_i> / n_i
    g, norms, grad_penalty, grad_norms = ctx.saved_tensors
    if r is None:
        return None, None, None, None
    b = g.shape[0]
    g2 = g.reshape(b, -1)
    r2 = r.reshape(b, -1).to(g2.dtype)
    n = norms.to(g2.dtype)
    nz = n > 0
    zero = torch.zeros_like(n)
    n_safe = torch.where(nz, n, torch.ones_like(n))
    a = 2.0 * grad_penalty.to(g2.dtype) / b
    gn = grad_norms.to(g2.dtype) if ctx.has_gn else zero
    coef = torch.where(nz, (a * (n - 1.0) + gn) / n_safe, zero)
    rg = (r2 * g2).sum(dim=1)
    d_g = (coef[:, None] * r2).reshape(g.shape)
    d_n = torch.where(nz, rg * (a - gn) / (n_safe * n_safe), zero).to(norms.dtype)
    d_gp = torch.where(nz, rg * 2.0 * (n - 1.0) / (b * n_safe), zero).sum()
    d_gn = None
    if ctx.has_gn:
        d_gn = torch.where(nz, rg / n_safe, zero).to(grad_norms.dtype)
    return d_g, d_n, d_gp.to(grad_penalty.dtype), d_gn


_gp_bwd_op.register_autograd(_gp_bwd_backward, setup_context=_gp_bwd_setup)


# custom_op's generated autograd does not compose with torch.func transforms, so the public
# entry point wraps the same ops and formulas in functorch-style autograd.Functions
# (setup_context): usable inside torch.func.grad, traced by Dynamo without a graph break.


class _GPNormPenaltyFunction(torch.autograd.Function):
    """(penalty, norms) = gan_accel::gp_norm_penalty(g); backward via the backward op."""

    @staticmethod
    def forward(g):
        if eager_direct_ok(g):  # eager: the launcher itself, no dispatcher round trips
            return gp_norm_penalty_forward(g)
        return torch.ops.gan_accel.gp_norm_penalty(g)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _gp_fwd_setup(ctx, inputs, output)

    @staticmethod
    def backward(ctx, grad_penalty, grad_norms):
        if grad_penalty is None and grad_norms is None:
            return None
        g, norms, grad_penalty = _gp_backward_inputs(ctx, grad_penalty)
        return _GPNormPenaltyBackwardFunction.apply(g, norms, grad_penalty, grad_norms)


class _GPNormPenaltyBackwardFunction(torch.autograd.Function):
    """gan_accel::gp_norm_penalty_backward with its torch double-backward formula."""

    @staticmethod
    def forward(g, norms, grad_penalty, grad_norms):
        if eager_direct_ok(g, norms, grad_penalty, grad_norms):
            return gp_norm_penalty_backward(g, norms, grad_penalty, grad_norms)
        return torch.ops.gan_accel.gp_norm_penalty_backward(g, norms, grad_penalty, grad_norms)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _gp_bwd_setup(ctx, inputs, output)

    @staticmethod
    def backward(ctx, r):
        return _gp_bwd_backward(ctx, r)


bind_signatures(_GPNormPenaltyFunction, _GPNormPenaltyBackwardFunction)

# --------------------------------------------------------------------------------------------
# Differentiable entry point
# --------------------------------------------------------------------------------------------


def triton_gp_norm_penalty(g: Tensor) -> Tensor:
    """Triton WGAN-GP norm penalty (``gan_accel::gp_norm_penalty``); same contract as
    :func:`torch_gp_norm_penalty`, differentiable twice."""
    loss, _ = _GPNormPenaltyFunction.apply(g)
    return loss
