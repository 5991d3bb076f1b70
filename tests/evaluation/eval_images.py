"""Labelled image sets drawn procedurally for the evaluation tests (no files, no download).

Class 0 a filled disc, class 1 a horizontal bar, class 2 a vertical bar, class 3 a ring:
each in a random colour, size and position on a plain background, so a small classifier
learns them in a few epochs and a generator's failure modes can be imitated exactly.
"""

from __future__ import annotations

import torch

from gan_accel.data import ImageSet

SHAPES = ("disc", "hbar", "vbar", "ring")


def draw_shapes(labels: torch.Tensor, channels: int = 3, resolution: int = 32,
                seed: int = 0, background: float = 1.0) -> torch.Tensor:
    """uint8 ``[N, C, R, R]`` images, image ``i`` of shape ``SHAPES[labels[i]]``."""
    g = torch.Generator().manual_seed(seed)
    n, r = len(labels), resolution
    ys, xs = torch.meshgrid(torch.arange(r).float(), torch.arange(r).float(), indexing="ij")
    size = r * (0.18 + 0.12 * torch.rand(n, generator=g))  # [N] half-size
    cy = r / 2 + (torch.rand(n, generator=g) - 0.5) * r * 0.3
    cx = r / 2 + (torch.rand(n, generator=g) - 0.5) * r * 0.3
    colour = torch.rand(n, channels, generator=g) * 0.6  # dark on the light background
    dy = ys[None] - cy[:, None, None]  # [N, R, R]
    dx = xs[None] - cx[:, None, None]
    s = size[:, None, None]
    dist = (dy ** 2 + dx ** 2).sqrt()
    masks = torch.stack([dist <= s,
                         (dy.abs() <= s * 0.3) & (dx.abs() <= s * 1.3),
                         (dx.abs() <= s * 0.3) & (dy.abs() <= s * 1.3),
                         (dist <= s) & (dist >= s * 0.6)])  # [4, N, R, R]
    mask = masks[labels, torch.arange(n)]  # [N, R, R]
    img = torch.full((n, channels, r, r), background)
    img = torch.where(mask[:, None], colour[:, :, None, None], img)
    img = img + 0.03 * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def shapes_set(counts: tuple[int, ...], channels: int = 3, resolution: int = 32,
               seed: int = 0, name: str = "shapes", labelled: bool = True,
               background: float = 1.0) -> ImageSet:
    """An :class:`ImageSet` with ``counts[c]`` images of class ``c`` (shuffled); unlabelled:
    ``num_classes`` 0 and every label 0, as an unlabelled folder."""
    labels = torch.cat([torch.full((k,), c) for c, k in enumerate(counts)]).long()
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    images = draw_shapes(labels, channels, resolution, seed + 1, background)
    data = ImageSet(name, images, labels if labelled else torch.zeros_like(labels),
                    f"{sum(counts)} drawn shapes", len(counts) if labelled else 0)
    # the fields the folder loader sets (a plain ImageSet may not declare them)
    data.class_names = SHAPES[: len(counts)] if labelled else ()
    data.background = background
    return data
