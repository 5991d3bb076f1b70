"""Fused spectral normalisation: W_sn = W / sigma(W), sigma estimated by power iteration.

Drop-in for ``torch.nn.utils.parametrizations.spectral_norm``. With ``W_mat`` the weight
moved so that ``dim`` comes first and flattened to ``[H, K]``, one training forward computes,
exactly in PyTorch's order (``_SpectralNorm._power_method``)::

    repeat n_power_iterations:
        u <- W_mat v   / max(||W_mat v||,   eps)      (in place on the ``_u`` buffer)
        v <- W_mat^T u / max(||W_mat^T u||, eps)      (in place on the ``_v`` buffer)
    sigma = u . (W_mat v)
    out   = W / sigma

(in eval mode the buffers are left alone and only ``sigma`` and ``out`` are computed). The
backward treats ``u`` and ``v`` as constants, as PyTorch does::

    dL/dW = G / sigma - (<G, W> / sigma^2) * u v^T

(the kernels compute ``sigma = ||W_mat^T u||^2 / max(||W_mat^T u||, eps)``, which is
``u . (W_mat v)`` for the new ``v``, without another pass over ``W``).

Small matrices (the seed D's, below ``TileConfig.sn_multi_min`` elements) run the whole
forward (power iterations, sigma, scaled weight and the detached copies of ``u``/``v`` kept
for backward) in ONE single-program launch, and the backward in another. Large ones use
several programs per phase: per power iteration a launch over row blocks (``W v``) and one
over column blocks (``u``, ``W^T u``), then one over tiles (``sigma``, ``v``, ``W / sigma``);
the backward is a launch of per-row-block partial ``<G, W>`` and one of gradient tiles.
Cross-program sums go through per-program partials that every consumer adds in the same fixed
order: deterministic, no atomics. The loops that stream ``W`` are software-pipelined
(``tl.range(num_stages=...)``). The weight is never copied: a ConvTranspose weight
``[in, out, kh, kw]`` with ``dim=1`` is addressed in place through the matrix view.

Ops (namespace ``gan_accel``, ``torch.library.custom_op`` with fake kernels):

* ``gan_accel::spectral_norm_fwd(Tensor weight, Tensor(a!) u, Tensor(b!) v,
  int n_power_iterations, float eps, int dim, bool training) -> (Tensor, Tensor, Tensor,
  Tensor)`` returning ``(out, sigma, u_used, v_used)``; ``mutates_args=("u", "v")``.
* ``gan_accel::spectral_norm_bwd(Tensor grad, Tensor weight, Tensor u, Tensor v, Tensor sigma,
  int dim) -> Tensor``, with a registered (torch-formula) double backward.

``custom_op`` refuses ``register_autograd`` on an op that mutates its inputs, so the
differentiable entry point is :func:`triton_spectral_norm`, a functorch-style
``torch.autograd.Function`` (``setup_context``) around the two ops: Dynamo traces it without a
graph break under ``torch.compile(fullgraph=True)`` and it composes with ``torch.func``
transforms (a spectrally normalised critic inside ``torch.func.grad``). Calling
``spectral_norm_fwd`` directly gives a non-differentiable ``out``. In plain eager calls the
Function runs the launchers directly (:func:`~._launch.eager_direct_ok`), which skips the
custom op's dispatcher round trips; anything that traces or fakes tensors gets the op.

Reference: ``torch_spectral_norm`` in :mod:`.reference` (pure PyTorch, numerically PyTorch's own
parametrization), paired with ``triton_spectral_norm`` here. This module needs Triton; the
public op and the parametrization (:mod:`.ops`) load it only when the Triton path is chosen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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
    prev_power_of_2,
    tile_config,
    tl_dtype,
)
from ._math import ieee_div, ieee_sqrt
from .reference import torch_outer_as_weight

__all__ = [
    "spectral_norm_backward",
    "spectral_norm_forward",
    "triton_spectral_norm",
]


# --------------------------------------------------------------------------------------------
# Triton kernels
# --------------------------------------------------------------------------------------------


# offset of W_mat[r, c] inside the contiguous weight, W_mat = weight.movedim(dim, 0).flatten(1)
@triton.jit
def _sn_offsets(rows, cols, H, K, INNER, PERMUTED: tl.constexpr):
    r = rows.to(tl.int64)
    c = cols.to(tl.int64)
    if PERMUTED:
        # column c = outer * INNER + inner  ->  outer * (H * INNER) + r * INNER + inner
        offs = (c // INNER)[None, :] * H * INNER + r[:, None] * INNER + (c % INNER)[None, :]
    else:
        offs = r[:, None] * K + c[None, :]
    return offs


# returns sum_p part[p] for p < n_part, added in a fixed order (every program gets the same bits)
@triton.jit
def _sn_sum_parts(part_ptr, n_part, BLOCK_P: tl.constexpr, ACC: tl.constexpr):
    acc = tl.zeros([BLOCK_P], dtype=ACC)
    for p0 in range(0, n_part, BLOCK_P):
        offs = p0 + tl.arange(0, BLOCK_P)
        acc += tl.load(part_ptr + offs, mask=offs < n_part, other=0.0, cache_modifier=".cg")
    return tl.sum(acc, axis=0)


# dst <- y / denom   (cast to dst's dtype)
@triton.jit
def _sn_normalize_store(y_ptr, dst_ptr, N, denom, BLOCK: tl.constexpr):
    for n0 in range(0, N, BLOCK):
        offs = n0 + tl.arange(0, BLOCK)
        mask = offs < N
        y = tl.load(y_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")
        tl.store(dst_ptr + offs, ieee_div(y, denom).to(dst_ptr.dtype.element_ty), mask=mask)


# dst <- y / denom, dst2 <- the same values   (cast to dst's dtype)
@triton.jit
def _sn_normalize_store2(y_ptr, dst_ptr, dst2_ptr, N, denom, BLOCK: tl.constexpr):
    for n0 in range(0, N, BLOCK):
        offs = n0 + tl.arange(0, BLOCK)
        mask = offs < N
        y = tl.load(y_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")
        x = ieee_div(y, denom).to(dst_ptr.dtype.element_ty)
        tl.store(dst_ptr + offs, x, mask=mask)
        tl.store(dst2_ptr + offs, x, mask=mask)


# returns sum_i a_i b_i   (in ACC)
@triton.jit
def _sn_dot(a_ptr, b_ptr, N, BLOCK: tl.constexpr, ACC: tl.constexpr):
    acc = tl.zeros([BLOCK], dtype=ACC)
    for n0 in range(0, N, BLOCK):
        offs = n0 + tl.arange(0, BLOCK)
        mask = offs < N
        a = tl.load(a_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")
        b = tl.load(b_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")
        acc += a.to(ACC) * b.to(ACC)
    return tl.sum(acc, axis=0)


# dst <- src
@triton.jit
def _sn_copy(src_ptr, dst_ptr, N, BLOCK: tl.constexpr):
    for n0 in range(0, N, BLOCK):
        offs = n0 + tl.arange(0, BLOCK)
        mask = offs < N
        x = tl.load(src_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")
        tl.store(dst_ptr + offs, x, mask=mask)


# ---- one program: small matrices, one launch each way ---------------------------------------


# y <- W_mat x   (ACC into y_ptr); returns ||y||^2
@triton.jit
def _sn_matvec(
    w_ptr,
    x_ptr,
    y_ptr,
    H,
    K,
    INNER,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    sumsq = tl.zeros([BLOCK_H], dtype=ACC)
    for h0 in range(0, H, BLOCK_H):
        rows = h0 + tl.arange(0, BLOCK_H)
        rmask = rows < H
        acc = tl.zeros([BLOCK_H], dtype=ACC)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
            cols = k0 + tl.arange(0, BLOCK_K)
            cmask = cols < K
            offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
            w = tl.load(w_ptr + offs, mask=rmask[:, None] & cmask[None, :], other=0.0)
            x = tl.load(x_ptr + cols, mask=cmask, other=0.0, cache_modifier=".cg")
            acc += tl.sum(w.to(ACC) * x.to(ACC)[None, :], axis=1)
        tl.store(y_ptr + rows, acc, mask=rmask)
        sumsq += acc * acc
    return tl.sum(sumsq, axis=0)


# y <- W_mat^T x   (ACC into y_ptr); returns ||y||^2
@triton.jit
def _sn_matvec_t(
    w_ptr,
    x_ptr,
    y_ptr,
    H,
    K,
    INNER,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    sumsq = tl.zeros([BLOCK_K], dtype=ACC)
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        cmask = cols < K
        acc = tl.zeros([BLOCK_K], dtype=ACC)
        for h0 in tl.range(0, H, BLOCK_H, num_stages=NUM_STAGES):
            rows = h0 + tl.arange(0, BLOCK_H)
            rmask = rows < H
            offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
            w = tl.load(w_ptr + offs, mask=rmask[:, None] & cmask[None, :], other=0.0)
            x = tl.load(x_ptr + rows, mask=rmask, other=0.0, cache_modifier=".cg")
            acc += tl.sum(w.to(ACC) * x.to(ACC)[:, None], axis=0)
        tl.store(y_ptr + cols, acc, mask=cmask)
        sumsq += acc * acc
    return tl.sum(sumsq, axis=0)


# u <- W v/max(||W v||, eps), v <- W^T u/max(||W^T u||, eps) (n times, training);
# sigma = ||W^T u||^2 / max(||W^T u||, eps)  (= u . W v)  or, in eval, u . W v;  out = W / sigma
@triton.jit
def _sn_fwd_kernel(
    w_ptr,
    out_ptr,
    u_ptr,
    v_ptr,
    u_used_ptr,
    v_used_ptr,
    sigma_ptr,
    ws_ptr,
    H,
    K,
    INNER,
    n_iters,
    eps,
    TRAINING: tl.constexpr,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_V: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    # One program does everything; phases talk through ws (ACC scratch [H + K]) and the u/v
    # buffers, separated by CTA barriers (global writes are visible CTA-wide after a barrier;
    # those reads use .cg so they never come from a stale L1 line).
    wsu_ptr = ws_ptr
    wsv_ptr = ws_ptr + H
    if TRAINING:
        ss = tl.sum(tl.zeros([BLOCK_V], dtype=ACC), axis=0)
        for _ in range(n_iters):
            ss = _sn_matvec(
                w_ptr, v_ptr, wsu_ptr, H, K, INNER, PERMUTED, BLOCK_H, BLOCK_K, NUM_STAGES, ACC
            )
            tl.debug_barrier()
            _sn_normalize_store(wsu_ptr, u_ptr, H, tl.maximum(ieee_sqrt(ss), eps), BLOCK_V)
            tl.debug_barrier()
            ss = _sn_matvec_t(
                w_ptr, u_ptr, wsv_ptr, H, K, INNER, PERMUTED, BLOCK_H, BLOCK_K, NUM_STAGES, ACC
            )
            tl.debug_barrier()
            _sn_normalize_store(wsv_ptr, v_ptr, K, tl.maximum(ieee_sqrt(ss), eps), BLOCK_V)
            tl.debug_barrier()
        sigma = ieee_div(ss, tl.maximum(ieee_sqrt(ss), eps))
    else:
        _sn_matvec(w_ptr, v_ptr, wsu_ptr, H, K, INNER, PERMUTED, BLOCK_H, BLOCK_K, NUM_STAGES, ACC)
        tl.debug_barrier()
        sigma = _sn_dot(wsu_ptr, u_ptr, H, BLOCK_V, ACC)
    tl.store(sigma_ptr, sigma)
    # detached copies of the vectors this forward used (saved for backward)
    _sn_copy(u_ptr, u_used_ptr, H, BLOCK_V)
    _sn_copy(v_ptr, v_used_ptr, K, BLOCK_V)
    # out <- W / sigma
    for h0 in range(0, H, BLOCK_H):
        rows = h0 + tl.arange(0, BLOCK_H)
        rmask = rows < H
        for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
            cols = k0 + tl.arange(0, BLOCK_K)
            mask = rmask[:, None] & (cols < K)[None, :]
            offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
            w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(ACC)
            tl.store(out_ptr + offs, ieee_div(w, sigma).to(out_ptr.dtype.element_ty), mask=mask)


# dW <- G / sigma - (<G, W> / sigma^2) u v^T
@triton.jit
def _sn_bwd_kernel(
    g_ptr,
    w_ptr,
    u_ptr,
    v_ptr,
    sigma_ptr,
    dw_ptr,
    H,
    K,
    INNER,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    sigma = tl.load(sigma_ptr).to(ACC)
    # pass 1: <G, W>
    acc = tl.zeros([BLOCK_H, BLOCK_K], dtype=ACC)
    for h0 in range(0, H, BLOCK_H):
        rows = h0 + tl.arange(0, BLOCK_H)
        rmask = rows < H
        for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
            cols = k0 + tl.arange(0, BLOCK_K)
            mask = rmask[:, None] & (cols < K)[None, :]
            offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
            g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
            w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(ACC)
            acc += g * w
    coef = ieee_div(tl.sum(tl.sum(acc, axis=1), axis=0), sigma * sigma)
    # pass 2: the gradient
    for h0 in range(0, H, BLOCK_H):
        rows = h0 + tl.arange(0, BLOCK_H)
        rmask = rows < H
        u = tl.load(u_ptr + rows, mask=rmask, other=0.0).to(ACC)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
            cols = k0 + tl.arange(0, BLOCK_K)
            cmask = cols < K
            mask = rmask[:, None] & cmask[None, :]
            offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
            g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
            v = tl.load(v_ptr + cols, mask=cmask, other=0.0).to(ACC)
            dw = ieee_div(g, sigma) - coef * (u[:, None] * v[None, :])
            tl.store(dw_ptr + offs, dw.to(dw_ptr.dtype.element_ty), mask=mask)


# ---- several programs: large matrices; the phases are separate launches --------------------
# Cross-program reductions go through per-program partial sums that each consumer adds in a
# fixed order, so the results are deterministic and no atomics or zero fills are needed.


# y[rows] <- W_mat[rows, :] x for this program's rows, x = x_raw or (X_NORM) x_raw / denom
# rounded like the buffer it becomes (denom = max(sqrt(sum x_part), eps); program 0 writes it
# to x_store and x_used); part[pid] <- sum(y^2), or (DOT_D) sum(d[rows] y)
@triton.jit
def _sn_rows_kernel(
    w_ptr,
    x_ptr,
    x_part_ptr,
    x_store_ptr,
    x_used_ptr,
    y_ptr,
    part_ptr,
    d_ptr,
    H,
    K,
    INNER,
    n_x_part,
    eps,
    PERMUTED: tl.constexpr,
    X_NORM: tl.constexpr,
    DOT_D: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_V: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_H + tl.arange(0, BLOCK_H)
    rmask = rows < H
    denom = tl.maximum(ieee_sqrt(_sn_sum_parts(x_part_ptr, n_x_part, BLOCK_P, ACC)), eps)
    acc = tl.zeros([BLOCK_H], dtype=ACC)
    for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
        cols = k0 + tl.arange(0, BLOCK_K)
        cmask = cols < K
        offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
        w = tl.load(w_ptr + offs, mask=rmask[:, None] & cmask[None, :], other=0.0)
        x = tl.load(x_ptr + cols, mask=cmask, other=0.0, cache_modifier=".cg").to(ACC)
        if X_NORM:
            x = ieee_div(x, denom).to(x_store_ptr.dtype.element_ty).to(ACC)
        acc += tl.sum(w.to(ACC) * x[None, :], axis=1)
    tl.store(y_ptr + rows, acc, mask=rmask)
    if DOT_D:
        d = tl.load(d_ptr + rows, mask=rmask, other=0.0).to(ACC)
        tl.store(part_ptr + pid, tl.sum(d * acc, axis=0))
    else:
        tl.store(part_ptr + pid, tl.sum(acc * acc, axis=0))
    if X_NORM:
        if pid == 0:
            _sn_normalize_store2(x_ptr, x_store_ptr, x_used_ptr, K, denom, BLOCK_V)


# u <- y / max(sqrt(sum y_part), eps) (rounded like the u buffer; program 0 writes u, u_used);
# z[cols] <- W_mat[:, cols]^T u for this program's columns; part[pid] <- sum(z^2)
@triton.jit
def _sn_cols_kernel(
    w_ptr,
    y_ptr,
    y_part_ptr,
    u_ptr,
    u_used_ptr,
    z_ptr,
    part_ptr,
    H,
    K,
    INNER,
    n_y_part,
    eps,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_V: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = pid * BLOCK_K + tl.arange(0, BLOCK_K)
    cmask = cols < K
    denom = tl.maximum(ieee_sqrt(_sn_sum_parts(y_part_ptr, n_y_part, BLOCK_P, ACC)), eps)
    acc = tl.zeros([BLOCK_K], dtype=ACC)
    for h0 in tl.range(0, H, BLOCK_H, num_stages=NUM_STAGES):
        rows = h0 + tl.arange(0, BLOCK_H)
        rmask = rows < H
        offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
        w = tl.load(w_ptr + offs, mask=rmask[:, None] & cmask[None, :], other=0.0)
        y = tl.load(y_ptr + rows, mask=rmask, other=0.0, cache_modifier=".cg").to(ACC)
        u = ieee_div(y, denom).to(u_ptr.dtype.element_ty).to(ACC)
        acc += tl.sum(w.to(ACC) * u[:, None], axis=0)
    tl.store(z_ptr + cols, acc, mask=cmask)
    tl.store(part_ptr + pid, tl.sum(acc * acc, axis=0))
    if pid == 0:
        _sn_normalize_store2(y_ptr, u_ptr, u_used_ptr, H, denom, BLOCK_V)


# sigma = ss / max(sqrt(ss), eps) with ss = sum part = ||W^T u||^2 (training), or sum part
# (eval, = u . W v); out <- W / sigma on this program's tile. Program 0 also stores sigma and
# v <- z / max(sqrt(ss), eps) into v, v_used (training) or copies u, v to u_used, v_used (eval)
@triton.jit
def _sn_scale_kernel(
    w_ptr,
    out_ptr,
    part_ptr,
    z_ptr,
    u_ptr,
    v_ptr,
    u_used_ptr,
    v_used_ptr,
    sigma_ptr,
    H,
    K,
    INNER,
    n_part,
    eps,
    TRAINING: tl.constexpr,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_V: tl.constexpr,
    ACC: tl.constexpr,
):
    pid_h = tl.program_id(0)
    pid_k = tl.program_id(1)
    ss = _sn_sum_parts(part_ptr, n_part, BLOCK_P, ACC)
    if TRAINING:
        denom = tl.maximum(ieee_sqrt(ss), eps)
        sigma = ieee_div(ss, denom)
    else:
        denom = ss
        sigma = ss
    rows = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    mask = (rows < H)[:, None] & (cols < K)[None, :]
    offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
    w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(out_ptr + offs, ieee_div(w, sigma).to(out_ptr.dtype.element_ty), mask=mask)
    if pid_h + pid_k == 0:
        tl.store(sigma_ptr, sigma)
        if TRAINING:
            _sn_normalize_store2(z_ptr, v_ptr, v_used_ptr, K, denom, BLOCK_V)
        else:
            _sn_copy(u_ptr, u_used_ptr, H, BLOCK_V)
            _sn_copy(v_ptr, v_used_ptr, K, BLOCK_V)


# part[pid] <- sum of G * W over this program's rows
@triton.jit
def _sn_bwd_rows_kernel(
    g_ptr,
    w_ptr,
    part_ptr,
    H,
    K,
    INNER,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_H + tl.arange(0, BLOCK_H)
    rmask = rows < H
    acc = tl.zeros([BLOCK_H, BLOCK_K], dtype=ACC)
    for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
        cols = k0 + tl.arange(0, BLOCK_K)
        mask = rmask[:, None] & (cols < K)[None, :]
        offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
        w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(ACC)
        acc += g * w
    tl.store(part_ptr + pid, tl.sum(tl.sum(acc, axis=1), axis=0))


# dW <- G / sigma - (sum part / sigma^2) u v^T   on this program's tile
@triton.jit
def _sn_bwd_tile_kernel(
    g_ptr,
    u_ptr,
    v_ptr,
    sigma_ptr,
    part_ptr,
    dw_ptr,
    H,
    K,
    INNER,
    n_part,
    PERMUTED: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_P: tl.constexpr,
    ACC: tl.constexpr,
):
    pid_h = tl.program_id(0)
    pid_k = tl.program_id(1)
    sigma = tl.load(sigma_ptr).to(ACC)
    coef = ieee_div(_sn_sum_parts(part_ptr, n_part, BLOCK_P, ACC), sigma * sigma)
    rows = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    rmask = rows < H
    cmask = cols < K
    mask = rmask[:, None] & cmask[None, :]
    offs = _sn_offsets(rows, cols, H, K, INNER, PERMUTED)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
    u = tl.load(u_ptr + rows, mask=rmask, other=0.0).to(ACC)
    v = tl.load(v_ptr + cols, mask=cmask, other=0.0).to(ACC)
    dw = ieee_div(g, sigma) - coef * (u[:, None] * v[None, :])
    tl.store(dw_ptr + offs, dw.to(dw_ptr.dtype.element_ty), mask=mask)


# --------------------------------------------------------------------------------------------
# Launchers
# --------------------------------------------------------------------------------------------


def _matrix_layout(weight: Tensor, dim: int) -> tuple[int, int, int, bool]:
    """(H, K, INNER, PERMUTED) of ``weight.movedim(dim, 0).flatten(1)`` for a contiguous weight."""
    shape = weight.shape
    h = shape[dim]
    inner = math.prod(shape[dim + 1 :])
    outer = math.prod(shape[:dim])
    return h, inner * outer, inner, outer > 1


def _uses_several_programs(h: int, k: int, cfg: TileConfig) -> bool:
    return h * k >= cfg.sn_multi_min


def _blocks(h: int, k: int, cfg: TileConfig) -> tuple[int, int, int]:
    """(BLOCK_H, BLOCK_K, BLOCK_V) of the one-program kernels."""
    bh = min(next_power_of_2(h), cfg.sn_block_h)
    bk = min(next_power_of_2(k), max(1, cfg.sn_tile // bh))
    return bh, bk, min(next_power_of_2(max(h, k)), cfg.sn_block_v)


def _row_blocks(h: int, k: int, cfg: TileConfig) -> tuple[int, int]:
    """(rows per program, BLOCK_K) of the row kernels: about ``sn_programs`` programs."""
    bh = min(cfg.sn_block_h, prev_power_of_2(cdiv(h, cfg.sn_programs)), next_power_of_2(h))
    return bh, min(next_power_of_2(k), max(1, cfg.sn_tile // bh))


def _col_blocks(h: int, k: int, cfg: TileConfig) -> tuple[int, int]:
    """(BLOCK_H, columns per program) of the column kernel."""
    per = prev_power_of_2(cdiv(k, cfg.sn_programs))
    bk = min(cfg.sn_max_cols, max(cfg.sn_min_cols, per), next_power_of_2(k))
    return min(next_power_of_2(h), max(1, cfg.sn_tile // bk)), bk


def _tile_blocks(h: int, k: int, cfg: TileConfig) -> tuple[int, int]:
    """(BLOCK_H, BLOCK_K) of the elementwise kernels (one tile per program)."""
    bh = min(next_power_of_2(h), cfg.sn_ew_rows)
    return bh, min(next_power_of_2(k), max(1, cfg.sn_tile // bh))


def spectral_norm_forward(
    weight: Tensor,
    u: Tensor,
    v: Tensor,
    n_power_iterations: int,
    eps: float,
    dim: int,
    training: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Launch the fused spectral-norm forward: one single-program launch for small matrices;
    for large ones (``TileConfig.sn_multi_min``) ``2 n + 1`` multi-program launches in
    training, 2 in eval.

    Args:
        weight: parameter, ``ndim >= 2``.
        u: left singular vector estimate ``[weight.shape[dim]]``; updated in place if training.
        v: right singular vector estimate ``[weight.numel() // weight.shape[dim]]``; ditto.
        n_power_iterations: power iterations to run when ``training`` (>= 1).
        eps: clamp for the norms, as in ``F.normalize``.
        dim: the output dimension of ``weight`` (0, or 1 for ConvTranspose).
        training: run the power iteration (and update ``u``/``v``) or not.

    Returns:
        ``(weight / sigma, sigma, u_used, v_used)``: ``sigma`` is ``[1]`` fp32 (fp64 for fp64
        weights); ``u_used``/``v_used`` are copies of the vectors sigma was computed with.
    """
    check_triton_device(weight, "spectral_norm_forward")
    if weight.ndim < 2:
        raise ValueError("spectral_norm_forward: weight needs ndim >= 2 (1-d: use F.normalize)")
    if training and n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
    w = weight.detach().contiguous()
    h, k, inner, permuted = _matrix_layout(w, dim % w.ndim)
    if u.shape != (h,) or v.shape != (k,) or not (u.is_contiguous() and v.is_contiguous()):
        raise ValueError(f"spectral_norm_forward: u/v must be contiguous [{h}] / [{k}]")
    cfg = tile_config(w.device)
    out = torch.empty_like(w)
    acc = acc_dtype(w)
    sigma = torch.empty(1, device=w.device, dtype=acc)
    u_used = torch.empty_like(u)
    v_used = torch.empty_like(v)
    layout = (h, k, inner, permuted)
    if _uses_several_programs(h, k, cfg):
        _forward_several(w, out, u, v, u_used, v_used, sigma, layout, int(n_power_iterations),
                         float(eps), bool(training), cfg)
        return out, sigma, u_used, v_used
    ws = torch.empty(h + k, device=w.device, dtype=acc)
    bh, bk, bv = _blocks(h, k, cfg)
    _sn_fwd_kernel[(1,)](
        w,
        out,
        u,
        v,
        u_used,
        v_used,
        sigma,
        ws,
        h,
        k,
        inner,
        int(n_power_iterations),
        float(eps),
        TRAINING=bool(training),
        PERMUTED=permuted,
        BLOCK_H=bh,
        BLOCK_K=bk,
        BLOCK_V=bv,
        NUM_STAGES=cfg.num_stages,
        ACC=tl_dtype(acc),
        num_warps=num_warps_for(bh * bk),
    )
    return out, sigma, u_used, v_used


def _forward_several(w, out, u, v, u_used, v_used, sigma, layout, n_iters, eps, training, cfg):
    """The multi-program forward: per power iteration a row launch (y = W v) and a column
    launch (u = y / ||y||, z = W^T u), then one tile launch (sigma, v = z / ||z||, W / sigma)."""
    h, k, inner, permuted = layout
    acc = sigma.dtype
    rbh, rbk = _row_blocks(h, k, cfg)
    cbh, cbk = _col_blocks(h, k, cfg)
    tbh, tbk = _tile_blocks(h, k, cfg)
    n_rows, n_cols = cdiv(h, rbh), cdiv(k, cbk)
    ws = torch.empty(h + k + n_rows + n_cols, device=w.device, dtype=acc)
    y, z = ws[:h], ws[h : h + k]
    y_part, z_part = ws[h + k : h + k + n_rows], ws[h + k + n_rows :]
    bv = min(next_power_of_2(max(h, k)), cfg.sn_block_v)
    bp = min(next_power_of_2(max(n_rows, n_cols)), cfg.sn_block_p)
    common = dict(PERMUTED=permuted, BLOCK_P=bp, BLOCK_V=bv, ACC=tl_dtype(acc))
    rows_kw = dict(BLOCK_H=rbh, BLOCK_K=rbk, NUM_STAGES=cfg.num_stages,
                   num_warps=num_warps_for(rbh * rbk), **common)
    cols_kw = dict(BLOCK_H=cbh, BLOCK_K=cbk, NUM_STAGES=cfg.num_stages,
                   num_warps=num_warps_for(cbh * cbk), **common)
    tile_grid = (cdiv(h, tbh), cdiv(k, tbk))
    tile_kw = dict(BLOCK_H=tbh, BLOCK_K=tbk, num_warps=num_warps_for(tbh * tbk), **common)
    if not training:
        # sigma = u . W v: the row launch's partials are u[rows] . y[rows]
        _sn_rows_kernel[(n_rows,)](w, v, y_part, v, v_used, y, y_part, u, h, k, inner, 0, eps,
                                   X_NORM=False, DOT_D=True, **rows_kw)
        _sn_scale_kernel[tile_grid](w, out, y_part, z, u, v, u_used, v_used, sigma, h, k,
                                    inner, n_rows, eps, TRAINING=False, **tile_kw)
        return
    for it in range(n_iters):
        # iteration 1 reads the v buffer; later ones v = z / ||z|| from the previous iteration
        x, first = (v, True) if it == 0 else (z, False)
        _sn_rows_kernel[(n_rows,)](w, x, z_part, v, v_used, y, y_part, u, h, k, inner,
                                   0 if first else n_cols, eps, X_NORM=not first, DOT_D=False,
                                   **rows_kw)
        _sn_cols_kernel[(n_cols,)](w, y, y_part, u, u_used, z, z_part, h, k, inner, n_rows, eps,
                                   **cols_kw)
    _sn_scale_kernel[tile_grid](w, out, z_part, z, u, v, u_used, v_used, sigma, h, k, inner,
                                n_cols, eps, TRAINING=True, **tile_kw)


def spectral_norm_backward(
    grad: Tensor, weight: Tensor, u: Tensor, v: Tensor, sigma: Tensor, dim: int
) -> Tensor:
    """Launch the fused spectral-norm backward: one single-program launch for small matrices,
    two multi-program launches (partial ``<G, W>`` per row block, then the gradient tiles) for
    large ones.

    Args:
        grad: gradient of the loss w.r.t. ``weight / sigma`` (same shape as ``weight``).
        weight, u, v, sigma, dim: as used / returned by :func:`spectral_norm_forward`.

    Returns:
        ``grad / sigma - (<grad, weight> / sigma^2) * (u v^T reshaped like weight)``.
    """
    check_triton_device(weight, "spectral_norm_backward")
    w = weight.detach().contiguous()
    g = grad.to(w.dtype).contiguous()
    u, v = u.contiguous(), v.contiguous()
    h, k, inner, permuted = _matrix_layout(w, dim % w.ndim)
    cfg = tile_config(w.device)
    acc = acc_dtype(w)
    dw = torch.empty_like(w)
    if not _uses_several_programs(h, k, cfg):
        bh, bk, _ = _blocks(h, k, cfg)
        _sn_bwd_kernel[(1,)](g, w, u, v, sigma, dw, h, k, inner, PERMUTED=permuted, BLOCK_H=bh,
                             BLOCK_K=bk, NUM_STAGES=cfg.num_stages, ACC=tl_dtype(acc),
                             num_warps=num_warps_for(bh * bk))
        return dw
    rbh, rbk = _row_blocks(h, k, cfg)
    n_rows = cdiv(h, rbh)
    part = torch.empty(n_rows, device=w.device, dtype=acc)
    _sn_bwd_rows_kernel[(n_rows,)](g, w, part, h, k, inner, PERMUTED=permuted, BLOCK_H=rbh,
                                   BLOCK_K=rbk, NUM_STAGES=cfg.num_stages, ACC=tl_dtype(acc),
                                   num_warps=num_warps_for(rbh * rbk))
    tbh, tbk = _tile_blocks(h, k, cfg)
    _sn_bwd_tile_kernel[(cdiv(h, tbh), cdiv(k, tbk))](
        g, u, v, sigma, part, dw, h, k, inner, n_rows, PERMUTED=permuted, BLOCK_H=tbh,
        BLOCK_K=tbk, BLOCK_P=min(next_power_of_2(n_rows), cfg.sn_block_p), ACC=tl_dtype(acc),
        num_warps=num_warps_for(tbh * tbk))
    return dw


# --------------------------------------------------------------------------------------------
# Operator registration (gan_accel::spectral_norm_fwd / gan_accel::spectral_norm_bwd)
# --------------------------------------------------------------------------------------------


@torch.library.custom_op("gan_accel::spectral_norm_fwd", mutates_args=("u", "v"))
def _sn_fwd_op(
    weight: Tensor,
    u: Tensor,
    v: Tensor,
    n_power_iterations: int,
    eps: float,
    dim: int,
    training: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return spectral_norm_forward(weight, u, v, n_power_iterations, eps, dim, training)


@_sn_fwd_op.register_fake
def _sn_fwd_fake(weight, u, v, n_power_iterations, eps, dim, training):
    out = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)
    sigma = weight.new_empty(1, dtype=acc_dtype(weight))
    return out, sigma, torch.empty_like(u), torch.empty_like(v)


@torch.library.custom_op("gan_accel::spectral_norm_bwd", mutates_args=())
def _sn_bwd_op(
    grad: Tensor, weight: Tensor, u: Tensor, v: Tensor, sigma: Tensor, dim: int
) -> Tensor:
    return spectral_norm_backward(grad, weight, u, v, sigma, dim)


@_sn_bwd_op.register_fake
def _sn_bwd_fake(grad, weight, u, v, sigma, dim):
    return torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)


def _sn_bwd_double_backward(grad, weight, u, v, sigma, dim, r, need_g, need_w):
    # Torch formula. f(G, W) = G/s - (<G,W>/s^2) uv with s = u^T W_mat v (u, v constant); for
    # an incoming R:
    #   d<R,f>/dG = R/s - (<R,uv>/s^2) W
    #   d<R,f>/dW = -(<R,G>/s^2) uv - (<R,uv>/s^2) G + 2 <G,W> <R,uv>/s^3 uv
    gg = gw = None
    if r is None or not (need_g or need_w):
        return gg, gw
    uv = torch_outer_as_weight(u, v, weight, dim)
    s = sigma.reshape(()).to(r.dtype)
    r_uv = (r * uv).sum()
    if need_g:
        gg = r / s - weight * (r_uv / (s * s))
    if need_w:
        g_w = (grad * weight).sum()
        r_g = (r * grad).sum()
        gw = (2 * g_w * r_uv / (s * s * s) - r_g / (s * s)) * uv - (r_uv / (s * s)) * grad
    return gg, gw


def _sn_bwd_setup(ctx, inputs, output):
    grad, weight, u, v, sigma, dim = inputs
    ctx.save_for_backward(grad, weight, u, v, sigma)
    ctx.dim = dim


def _sn_bwd_backward(ctx, r):
    grad, weight, u, v, sigma = ctx.saved_tensors
    gg, gw = _sn_bwd_double_backward(
        grad, weight, u, v, sigma, ctx.dim, r, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    )
    return gg, gw, None, None, None, None


_sn_bwd_op.register_autograd(_sn_bwd_backward, setup_context=_sn_bwd_setup)


def _bump_versions(*tensors: Tensor) -> None:
    """What the op's in-place schema does for its mutated arguments: bump their versions, so
    autograd notices if anything saved them before this update."""
    for t in tensors:
        if not t.is_inference():
            torch.autograd.graph.increment_version(t)


class _SpectralNormFunction(torch.autograd.Function):
    """``out = weight / sigma`` via gan_accel::spectral_norm_fwd (which also updates u, v in
    place when training); backward via gan_accel::spectral_norm_bwd.

    ``torch.library.custom_op`` cannot attach a backward to an op that mutates its inputs, so
    the differentiable wrapper is this (functorch-style, ``setup_context``) autograd.Function:
    Dynamo traces it under ``torch.compile(fullgraph=True)`` and it composes with
    ``torch.func.grad`` / ``functional_call`` (e.g. a spectrally normalised critic inside a
    WGAN-GP penalty).
    """

    @staticmethod
    def forward(weight, u, v, n_power_iterations, eps, dim, training):
        if eager_direct_ok(weight, u, v):
            # eager: the launcher itself, without the op's dispatcher round trips
            out, sigma, u_used, v_used = spectral_norm_forward(
                weight, u, v, n_power_iterations, eps, dim, training
            )
            if training:
                _bump_versions(u, v)
            return out, sigma, u_used, v_used
        out, sigma, u_used, v_used = torch.ops.gan_accel.spectral_norm_fwd(
            weight, u, v, n_power_iterations, eps, dim, training
        )
        return out, sigma, u_used, v_used

    @staticmethod
    def setup_context(ctx, inputs, output):
        weight, _, _, _, _, dim, _ = inputs
        _, sigma, u_used, v_used = output
        ctx.save_for_backward(weight, u_used, v_used, sigma)
        ctx.dim = dim
        ctx.mark_non_differentiable(sigma, u_used, v_used)

    @staticmethod
    def backward(ctx, grad_out, *_unused):
        weight, u_used, v_used, sigma = ctx.saved_tensors
        grad_w = None
        if ctx.needs_input_grad[0] and grad_out is not None:
            grad_w = _SpectralNormBackwardFunction.apply(
                grad_out, weight, u_used, v_used, sigma, ctx.dim
            )
        return grad_w, None, None, None, None, None, None


class _SpectralNormBackwardFunction(torch.autograd.Function):
    """gan_accel::spectral_norm_bwd with a torch double-backward formula."""

    @staticmethod
    def forward(grad, weight, u, v, sigma, dim):
        if eager_direct_ok(grad, weight, u, v, sigma):
            return spectral_norm_backward(grad, weight, u, v, sigma, dim)
        return torch.ops.gan_accel.spectral_norm_bwd(grad, weight, u, v, sigma, dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _sn_bwd_setup(ctx, inputs, output)

    @staticmethod
    def backward(ctx, r):
        return _sn_bwd_backward(ctx, r)


bind_signatures(_SpectralNormFunction, _SpectralNormBackwardFunction)

def triton_spectral_norm(
    weight: Tensor,
    u: Tensor,
    v: Tensor,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int = 0,
    training: bool = True,
) -> Tensor:
    """Triton spectral normalisation (``gan_accel::spectral_norm_fwd``); same contract as
    :func:`torch_spectral_norm`: ``u``/``v`` updated in place when ``training``, returns
    ``weight / sigma`` differentiable w.r.t. ``weight``."""
    if weight.ndim == 1:
        return F.normalize(weight, dim=0, eps=eps)
    out, _, _, _ = _SpectralNormFunction.apply(
        weight, u, v, int(n_power_iterations), float(eps), int(dim), bool(training)
    )
    return out
