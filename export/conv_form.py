"""ConvTranspose2d rewritten for ONNX Runtime: as a Gemm on a 1x1 input
(:class:`ConvTransposeAsLinear`), and as Conv2d + pixel shuffle (:class:`SubPixelConvTranspose`),
the form onnxruntime has int8 kernels for.

onnxruntime's CPU execution provider has no int8 ConvTranspose: in a QDQ model it keeps
``DequantizeLinear -> ConvTranspose (float) -> QuantizeLinear``, so an int8 DCGAN generator
ran *slower* than fp32 (113 vs 73 ms at batch 512, 1 thread). Written as a regular
convolution followed by a pixel shuffle (the sub-pixel identity below), every layer becomes
a ``QLinearConv`` plus int8 data movement (Reshape / Transpose / Slice).

Sub-pixel identity, per axis, for stride ``s``, kernel ``k``, padding ``p``: output row
``i`` with ``i + p = s m + r`` (phase ``r`` in ``[0, s)``) is

    y[o, s m + r] = sum_{c, t < T} x[c, m - t] W[c, o, r + s t],      T = ceil(k / s)

a ``T``-tap correlation over ``x`` padded by ``T - 1`` whose ``s^2 * C_out`` output channels
are the phases; interleaving the phases (pixel shuffle) and cropping ``p`` rows each side
gives the ConvTranspose output exactly (taps with ``r + s t >= k`` are zero).

The shuffle is done channels-last (``[B, M, N, (r, r', o)] -> [B, M, r, N, r', o]``): it
moves contiguous runs of ``s * C_out`` values instead of single bytes, and the
NCHW <-> NHWC transposes onnxruntime puts around its channels-last ``QLinearConv`` cancel
against ours. A pointwise activation right after the layer (ReLU, LeakyReLU, Sigmoid, Tanh)
moves in front of the shuffle, where it fuses into the int8 convolution.
"""

from __future__ import annotations

import torch
from torch import nn

POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def can_rewrite(ct: nn.Module) -> bool:
    """Whether ``ct`` is a ConvTranspose2d this rewrite reproduces exactly."""
    return (isinstance(ct, nn.ConvTranspose2d) and ct.groups == 1
            and _pair(ct.dilation) == (1, 1) and _pair(ct.output_padding) == (0, 0)
            and ct.padding_mode == "zeros")


class SubPixelConvTranspose(nn.Module):
    """``ConvTranspose2d`` computed as ``Conv2d -> [activation] -> pixel shuffle -> crop``."""

    def __init__(self, ct: nn.ConvTranspose2d, activation: nn.Module | None = None):
        super().__init__()
        assert can_rewrite(ct), ct
        cin, cout, kh, kw = ct.weight.shape
        (sh, sw), (ph, pw) = _pair(ct.stride), _pair(ct.padding)
        th, tw = -(-kh // sh), -(-kw // sw)  # taps per phase
        self.cout, self.stride, self.kernel, self.pad = cout, (sh, sw), (kh, kw), (ph, pw)
        weight = ct.weight.detach().float()  # [Cin, Cout, kh, kw]
        phases = torch.zeros(sh, sw, cout, cin, th, tw)  # output channel = (r, r', o)
        for r in range(sh):
            for rr in range(sw):
                for t in range(th):
                    for tt in range(tw):
                        a, b = r + sh * t, rr + sw * tt
                        if a < kh and b < kw:  # flipped taps: correlation, not convolution
                            phases[r, rr, :, :, th - 1 - t, tw - 1 - tt] = weight[:, :, a, b].t()
        self.conv = nn.Conv2d(cin, sh * sw * cout, (th, tw), padding=(th - 1, tw - 1),
                              bias=ct.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(phases.reshape(sh * sw * cout, cin, th, tw))
            if ct.bias is not None:
                self.conv.bias.copy_(ct.bias.detach().float().repeat(sh * sw))
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (sh, sw), (kh, kw), (ph, pw) = self.stride, self.kernel, self.pad
        b, h, w = x.shape[0], x.shape[2], x.shape[3]
        y = self.activation(self.conv(x))  # [B, sh*sw*Cout, M, N]
        m, n = y.shape[2], y.shape[3]
        y = y.permute(0, 2, 3, 1).reshape(b, m, n, sh, sw * self.cout)  # [B, M, N, r, (r', o)]
        y = y.permute(0, 1, 3, 2, 4).reshape(b, m * sh, n * sw, self.cout)  # [B, H', W', Cout]
        oh, ow = (h - 1) * sh + kh - 2 * ph, (w - 1) * sw + kw - 2 * pw
        if (ph, pw) != (0, 0) or (oh, ow) != (m * sh, n * sw):
            y = y[:, ph:ph + oh, pw:pw + ow]
        return y.permute(0, 3, 1, 2)  # [B, Cout, H_out, W_out]


class ConvTransposeAsLinear(nn.Module):
    """A ConvTranspose2d on a 1x1 input: ``[B, Cin, 1, 1] -> Linear -> [B, Cout, kh, kw]``.

    ``y[b, o, i, j] = sum_c x[b, c] W[c, o, i + p, j + p]`` (+ bias[o]).
    """

    def __init__(self, ct: nn.ConvTranspose2d):
        super().__init__()
        cin, cout, kh, kw = ct.weight.shape
        self.cout, (self.ph, self.pw), self.kh, self.kw = cout, ct.padding, kh, kw
        self.linear = nn.Linear(cin, cout * kh * kw, bias=ct.bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(ct.weight.reshape(cin, -1).t())  # [Cout*kh*kw, Cin]
            if ct.bias is not None:
                self.linear.bias.copy_(ct.bias.repeat_interleave(kh * kw))

        self.activation = nn.Identity()  # a pointwise op moved in front of the view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.linear(x.flatten(1)))
        y = y.view(x.shape[0], self.cout, self.kh, self.kw)
        if self.ph or self.pw:
            y = y[:, :, self.ph:self.kh - self.ph, self.pw:self.kw - self.pw]
        return y


def to_conv_form(model: nn.Module) -> int:
    """Replace (in place) every rewritable ConvTranspose2d of ``model`` by a
    :class:`SubPixelConvTranspose`, moving a pointwise activation that follows it in an
    ``nn.Sequential`` (Identity layers skipped) inside; the same activation move for a
    1x1-input ConvTranspose already turned into a Gemm (so Gemm + ReLU fuse into one int8
    QGemm instead of leaving a float Reshape between two quantisations). Returns the number
    of ConvTranspose2d replaced."""
    replaced = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i, layer in enumerate(list(seq)):
            as_linear = isinstance(layer, ConvTransposeAsLinear)
            if not (can_rewrite(layer) or as_linear):
                continue
            j = i + 1
            while j < len(seq) and isinstance(seq[j], nn.Identity):
                j += 1
            activation = None
            if j < len(seq) and isinstance(seq[j], POINTWISE):
                activation, seq[j] = seq[j], nn.Identity()
            if as_linear:  # DCGAN's first layer, already a Gemm: only the activation moves
                if activation is not None:
                    layer.activation = activation
                continue
            seq[i] = SubPixelConvTranspose(layer, activation)
            replaced += 1
    for name, m in list(model.named_modules()):
        if can_rewrite(m):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr,
                    SubPixelConvTranspose(m))
            replaced += 1
    return replaced
