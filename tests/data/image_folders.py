"""Tiny image folders written with Pillow for the folder and cache tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_rgb(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth random colour picture ``[h, w, 3]`` uint8 (a gradient plus a blob)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    c = rng.uniform(0, 1, (3, 3))
    img = c[0] * xx[..., None] + c[1] * yy[..., None] + c[2] * 0.5
    cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
    blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
    img[blob] = rng.uniform(0, 1, 3)
    return (np.clip(img / max(img.max(), 1e-6), 0, 1) * 255).astype(np.uint8)


def write_image(path: Path, mode: str, w: int, h: int, seed: int) -> Path:
    """Write one ``w`` x ``h`` image of Pillow ``mode`` ("P+t": palette with a transparent
    colour; "I;16": 16-bit gray PNG) to ``path``."""
    rng = np.random.default_rng(seed)
    rgb = smooth_rgb(rng, w, h)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        wide = (rgb[..., 0].astype(np.uint16) << 8) | rgb[..., 1]  # every bit in use
        Image.fromarray(wide).save(path)
    elif mode == "RGBA":
        alpha = np.full((h, w), 255, np.uint8)
        alpha[: h // 2] = 0  # top half transparent
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    elif mode == "P+t":
        im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        im.save(path, transparency=int(np.asarray(im)[0, 0]))
    else:
        Image.fromarray(rgb).convert(mode).save(path)
    return path


MIXED = [("RGB", 40, 40), ("RGBA", 48, 32), ("L", 20, 30), ("LA", 33, 33), ("P", 64, 64),
         ("P+t", 50, 40), ("I;16", 36, 36), ("1", 30, 30), ("CMYK", 40, 60)]


def mixed_folder(root: Path, classes=("cat", "dog"), seed: int = 0) -> Path:
    """One image of every mode in MIXED per class (CMYK as JPEG, the rest as PNG)."""
    for c, name in enumerate(classes):
        for i, (mode, w, h) in enumerate(MIXED):
            ext = "jpg" if mode == "CMYK" else "png"
            write_image(root / name / f"{i:02d}-{mode.replace(';', '')}.{ext}", mode, w, h,
                        seed * 1000 + c * 100 + i)
    return root


def rgb_folder(root: Path, n: int, classes=("a", "b"), size=(40, 40), seed: int = 0) -> Path:
    """``n`` RGB PNGs per class (``classes`` empty: a flat, unlabelled folder)."""
    for c, name in enumerate(classes or [""]):
        for i in range(n):
            write_image(root / name / f"{i:03d}.png", "RGB", *size, seed * 10_000 + c * 1000 + i)
    return root
