"""Differentiable augmentation of every image D sees (DiffAugment, Zhao et al. 2020).

At 5,000 training images D memorises the real set and stops teaching G; augmenting both the
real and the generated images with the same random family of transforms, differentiably so
G's gradient flows through them, keeps D honest without leaking the transforms into G's
samples. The transforms respect the data's range: pixels shifted or cut in are the
*background* (the data's background gray, 0 = black by default: 0 for [0, 1] data, -1 for
[-1, 1]), and brightness moves by a share of the range's width.

The randomness is an input, not drawn inside: the trainer draws ``u`` (uniforms in [0, 1),
``[views, B, PARAMS]``) from its per-step generator, so eager and compiled steps see the same
transforms, a resumed run the same ones as an uninterrupted run, and the compiled graph holds
no RNG. Each call that shows images to D uses its own view ``u[i]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..augment_policy import Transform, parse_policy
from ..ranges import OutputRange

__all__ = ["PARAMS", "VIEWS", "Augment", "Transform", "diff_augment", "parse_policy"]


# columns of u: [apply, a, b] per transform
PARAMS_PER_TRANSFORM = 3
PARAMS = PARAMS_PER_TRANSFORM * len(Transform)
VIEWS = 3  # images D sees per phase at most: real, fake, interpolates
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
MAX_ROTATION = math.radians(15.0)
SCALE_RANGE = (0.9, 1.1)


def _columns(u: Tensor, t: Transform) -> tuple[Tensor, Tensor, Tensor]:
    i = list(Transform).index(t) * PARAMS_PER_TRANSFORM
    return u[:, i], u[:, i + 1], u[:, i + 2]  # each [B]


def translate(x: Tensor, dy: Tensor, dx: Tensor, background: float) -> Tensor:
    """Shift each image by integer (dy, dx) ``[B]`` pixels; uncovered pixels = background."""
    B, C, H, W = x.shape
    s = int(max(H, W) * TRANSLATION_RATIO + 0.5)
    xp = F.pad(x, (s, s, s, s), value=background)  # [B, C, H + 2s, W + 2s]
    rows = torch.arange(H, device=x.device)[None, :] + s - dy[:, None]  # [B, H]
    cols = torch.arange(W, device=x.device)[None, :] + s - dx[:, None]  # [B, W]
    xp = xp.gather(2, rows[:, None, :, None].expand(B, C, H, W + 2 * s))  # [B, C, H, W + 2s]
    return xp.gather(3, cols[:, None, None, :].expand(B, C, H, W))  # [B, C, H, W]


def cutout(x: Tensor, cy: Tensor, cx: Tensor, on: Tensor, background: float) -> Tensor:
    """Set a square of side ``CUTOUT_RATIO * H`` centred at (cy, cx) to the background."""
    B, _, H, W = x.shape
    half = int(H * CUTOUT_RATIO + 0.5) / 2
    ys = torch.arange(H, device=x.device, dtype=x.dtype)[None, :]  # [1, H]
    xs = torch.arange(W, device=x.device, dtype=x.dtype)[None, :]
    in_y = (ys - cy[:, None]).abs() < half  # [B, H]
    in_x = (xs - cx[:, None]).abs() < half  # [B, W]
    hole = (in_y[:, :, None] & in_x[:, None, :] & on[:, None, None])[:, None]  # [B, 1, H, W]
    return torch.where(hole, torch.full_like(x, background), x)


def affine(x: Tensor, angle: Tensor, scale: Tensor, background: float) -> Tensor:
    """Rotate each image by ``angle`` [B] radians and scale it by ``scale`` [B] about its
    centre (bilinear); pixels from outside the image are the background."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # the inverse map
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1),
                         torch.stack([sin, cos, zero], 1)], 1)  # [B, 2, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) + background


def shear(x: Tensor, factor: Tensor, background: float) -> Tensor:
    """Slant each image by a horizontal shear ``x' = x + factor * y`` about its centre
    (``factor`` [B]; bilinear; pixels from outside the image are the background)."""
    one, zero = torch.ones_like(factor), torch.zeros_like(factor)
    theta = torch.stack([torch.stack([one, factor, zero], 1),
                         torch.stack([zero, one, zero], 1)], 1)  # [B, 2, 3], the inverse map
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) + background


def stroke_width(x: Tensor, amount: Tensor) -> Tensor:
    """Thicken (``amount`` > 0) or thin (< 0) bright strokes on a dark background: each image
    of ``x`` [B, C, H, W] moves ``|amount|`` [B] (at most 1) of the way to its 3x3 dilation
    (max) or erosion (min). Differentiable with respect to ``x``."""
    a = amount.view(-1, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, 1, 1)
    eroded = -F.max_pool2d(-x, 3, 1, 1)
    return torch.where(a > 0, x + a * (dilated - x), x - a * (eroded - x))


def diff_augment(x: Tensor, u: Tensor, policy: tuple[Transform, ...], output_range: OutputRange,
                 p: Tensor | float = 1.0, background: float = 0.0) -> Tensor:
    """Apply ``policy`` to ``x`` [B, C, H, W] with per-sample parameters ``u`` [B, PARAMS].

    Each transform is applied to a sample with probability ``p`` (a float or a 0-d tensor:
    ADA-style adaptive strength); differentiable with respect to ``x``. Pixels shifted or cut
    in take the ``background`` gray (in [0, 1], mapped to the range).
    """
    lo, hi = output_range.bounds
    background = lo + background * (hi - lo)
    B, _, H, W = x.shape
    for t in policy:
        on_u, a, b = _columns(u, t)
        on = on_u < p  # [B] bool
        if t is Transform.COLOR:
            bright = ((a - 0.5) * (0.5 * (hi - lo)))[:, None, None, None]  # +-1/4 of the width
            contrast = (b + 0.5)[:, None, None, None]  # x [0.5, 1.5] about the image mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = torch.where(on[:, None, None, None], (x - mean) * contrast + mean + bright, x)
        elif t is Transform.AFFINE:
            angle = (2 * a - 1) * MAX_ROTATION * on
            lo_s, hi_s = SCALE_RANGE
            scale = torch.where(on, lo_s + (hi_s - lo_s) * b, torch.ones_like(b))
            x = torch.where(on[:, None, None, None], affine(x, angle, scale, background), x)
        elif t is Transform.TRANSLATION:
            s = int(max(H, W) * TRANSLATION_RATIO + 0.5)
            dy = ((a * (2 * s + 1)).floor().long() - s) * on  # [B] in [-s, s]
            dx = ((b * (2 * s + 1)).floor().long() - s) * on
            x = translate(x, dy, dx, background)
        else:
            x = cutout(x, (a * H).floor(), (b * W).floor(), on, background)
    return x


class Augment:
    """The run's augmentation: a policy, the data range and a probability (or None: off)."""

    def __init__(self, policy: tuple[Transform, ...], output_range: OutputRange,
                 background: float = 0.0):
        self.policy, self.output_range, self.background = policy, output_range, background

    def draw(self, batch: int, device, generator: torch.Generator) -> Tensor:
        """Uniforms for one phase: ``[VIEWS, batch, PARAMS]``."""
        return torch.rand(VIEWS, batch, PARAMS, device=device, generator=generator)

    def __call__(self, x: Tensor, u: Tensor, p: Tensor | float = 1.0) -> Tensor:
        return diff_augment(x, u, self.policy, self.output_range, p, self.background)
