"""A request's latents in, its response bytes out: the numpy side of ``POST /generate``.

:func:`feeds_for` turns a request checked by :func:`.requests.parse_generate` into generator
inputs (a seed draws with the metadata's distributions, exactly as
``OnnxGenerator.sample(n, seed, label)``); :func:`encode` turns the generator's float images
into a PNG (one image, or a grid) or an uncompressed ``.npz`` of uint8 pixels.
"""

from __future__ import annotations

import io
import math

import numpy as np

from ...latent import LatentSpec
from ..bulk import to_uint8
from .requests import Format

GRID_PADDING = 2  # pixels between grid tiles (as the sample grids have)
GRID_PAD_VALUE = 128  # mid grey


def feeds_for(request: dict, spec: LatentSpec) -> dict[str, np.ndarray]:
    """Generator inputs ``{name: array}`` for one checked request (``n`` rows)."""
    n = request["n"]
    label = request.get("label")
    if label is not None:
        label = np.asarray(label if isinstance(label, list) else [label] * n, dtype=np.int64)
    if "z" in request:
        feeds = {"z": np.asarray(request["z"], dtype=np.float32)}
        if spec.num_classes:
            feeds["label"] = label
    else:
        feeds = spec.sample_numpy(n, np.random.default_rng(request["seed"]), label)
    if request.get("codes") is not None:
        feeds["codes"] = np.asarray(request["codes"], dtype=np.float32)
    return feeds


def pixels(images: np.ndarray, output_range: str) -> np.ndarray:
    """Float images [n, C, H, W] in ``output_range`` -> uint8 [n, H, W] (one channel) or
    [n, H, W, C], quantised as every other image the toolkit writes (:func:`bulk.to_uint8`)."""
    channels = images.shape[1]
    planes = [to_uint8(images[:, c:c + 1], output_range) for c in range(channels)]  # [n, H, W]
    return planes[0] if channels == 1 else np.stack(planes, axis=-1)


def grid(u8: np.ndarray, nrow: int | None = None) -> np.ndarray:
    """uint8 images [n, H, W(, C)] tiled ``nrow`` per row (default: square-ish) with a grey
    2-pixel border; one image is returned as it is."""
    n, h, w = u8.shape[:3]
    if n == 1:
        return u8[0]
    cols = min(nrow or math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / cols)
    p = GRID_PADDING
    canvas = np.full((rows * (h + p) + p, cols * (w + p) + p, *u8.shape[3:]), GRID_PAD_VALUE,
                     dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[p + r * (h + p):p + r * (h + p) + h, p + c * (w + p):p + c * (w + p) + w] = u8[i]
    return canvas


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 [H, W] (grey) or [H, W, 3] (RGB) image as PNG bytes (Pillow)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def npz_bytes(u8: np.ndarray, feeds: dict[str, np.ndarray]) -> bytes:
    """An uncompressed ``.npz``: ``images`` uint8 plus the latent arrays that made them."""
    buf = io.BytesIO()
    np.savez(buf, images=u8, **feeds)
    return buf.getvalue()


def encode(images: np.ndarray, feeds: dict[str, np.ndarray], output_range: str, fmt: str,
           nrow: int | None = None) -> bytes:
    """One request's response body in format ``fmt`` (see :class:`.requests.Format`)."""
    u8 = pixels(images, output_range)
    if Format(fmt) is Format.PNG:
        return png_bytes(grid(u8, nrow))
    return npz_bytes(u8, feeds)
