"""One image file -> uint8 ``[C, R, R]`` pixels at the run's channels and resolution.

Every mode Pillow reads is converted the same way, and what was done is recorded so one line
can say it (:func:`conversion_summary`):

* EXIF orientation is applied first (``ImageOps.exif_transpose``);
* alpha (RGBA, LA, PA, P with a transparent colour) is composited on the background gray;
* 16-bit and 32-bit integer grayscale (I;16*, I) is scaled from 0..65535 to 0..255, float
  grayscale (F) clipped to 0..255;
* colour -> 1 channel: Pillow's ITU-R 601-2 luma (``convert("L")``); gray -> 3 channels:
  the gray value copied to R, G and B; bilevel (1), CMYK, YCbCr, HSV and palette images go
  through Pillow's own conversion;
* non-square images are centre-cropped to a square, then every image whose side differs
  from the resolution is resized with one filter, Lanczos (``Image.LANCZOS``): Pillow widens
  its support by the scale factor when shrinking, so downsampling is antialiased and sharper
  than a box (area) filter, and it also interpolates the rare upscale; StyleGAN2-ADA's
  ``dataset_tool.py`` uses the same filter;
* multi-frame files (GIF, APNG, TIFF) give their first frame.

Torch-free on purpose: the decoding worker processes import only Pillow and numpy.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

RESIZE_FILTER = Image.Resampling.LANCZOS
RESIZE_FILTER_NAME = "Lanczos"
# modes that carry one gray channel; anything else is treated as colour
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
WIDE_INT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Decoded:
    """What decoding one file did: its mode and size as stored, and the steps taken."""

    mode: str  # the file's mode, e.g. "RGBA", "I;16", "P+transparency"
    width: int
    height: int
    rotated: bool  # EXIF orientation applied
    frames: int  # frames in the file (the first is used)


def channels_of_mode(mode: str) -> int:
    """1 for a gray mode, 3 for colour (``P+transparency`` counts as colour)."""
    return 1 if mode in GRAY_MODES else 3


def background_level(background: float) -> int:
    """The background gray in [0, 1] as an 8-bit level."""
    return int(round(255 * background))


def _wide_to_l(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit L."""
    a = np.asarray(im)
    if im.mode == "F":
        a8 = np.clip(np.rint(a), 0, 255)
    else:  # 0..65535 -> 0..255, rounded
        a8 = (np.clip(a.astype(np.int64), 0, 65535) * 255 + 32767) // 65535
    return Image.fromarray(a8.astype(np.uint8), "L")


def to_channels(im: Image.Image, channels: int, background: float) -> tuple[Image.Image, str]:
    """``im`` as 8-bit L (``channels`` 1) or RGB (3), alpha composited on ``background``.

    Returns the converted image and the source mode as recorded (a palette image with a
    transparent colour is recorded as ``P+transparency``).
    """
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        mode = "P+transparency"
        im = im.convert("RGBA")
    elif mode in ALPHA_MODES:
        im = im.convert("RGBA")
    elif mode in WIDE_INT_MODES or mode == "F":
        im = _wide_to_l(im)
    if im.mode == "RGBA":
        level = background_level(background)
        base = Image.new("RGBA", im.size, (level, level, level, 255))
        base.alpha_composite(im)
        im = base.convert("RGB")
    target = "L" if channels == 1 else "RGB"
    if im.mode != target:
        im = im.convert(target)
    return im, mode


def centre_square(im: Image.Image) -> Image.Image:
    """The largest centred square of ``im``."""
    w, h = im.size
    if w == h:
        return im
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return im.crop((left, top, left + side, top + side))


def prepare(im: Image.Image, resolution: int, channels: int,
            background: float) -> tuple[np.ndarray, str]:
    """A loaded, upright image -> uint8 ``[C, R, R]`` and its source mode."""
    im, mode = to_channels(im, channels, background)
    im = centre_square(im)
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), RESIZE_FILTER)
    a = np.asarray(im, dtype=np.uint8)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), mode


def decode_file(path: str, resolution: int, channels: int,
                background: float) -> tuple[np.ndarray, Decoded]:
    """Read ``path`` fully and return uint8 ``[C, R, R]`` pixels and what was done.

    Raises whatever Pillow raises for an unreadable or truncated file (the caller turns it
    into one line naming the file).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im.load()  # the whole file: a truncated one fails here, not later
            frames = getattr(im, "n_frames", 1)
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
            w, h = im.size
            upright = ImageOps.exif_transpose(im)
            pixels, mode = prepare(upright, resolution, channels, background)
    return pixels, Decoded(mode, w, h, orientation not in (1, None), frames)


def read_mode(path: str) -> str:
    """The mode of ``path`` from its header alone (no pixel decoding)."""
    with Image.open(path) as im:
        if im.mode == "P" and "transparency" in im.info:
            return "P+transparency"
        return im.mode


# -- the one line that says what was converted -----------------------------------------------
def background_name(background: float) -> str:
    return {0.0: "black", 1.0: "white"}.get(background, f"gray {background:g}")


def _mode_label(mode: str) -> str:
    return "bilevel (1)" if mode == "1" else mode


def conversion_summary(records: list[Decoded], resolution: int, channels: int,
                       background: float) -> str:
    """One line: how many images of each source mode were converted, cropped, resized."""
    target = "RGB" if channels == 3 else "grayscale (L)"
    native = "RGB" if channels == 3 else "L"
    modes = Counter(r.mode for r in records)
    converted = [(m, n) for m, n in modes.most_common() if m != native]
    parts = []
    if converted:
        alpha = [(m, n) for m, n in converted if m in ALPHA_MODES or m == "P+transparency"]
        wide = [(m, n) for m, n in converted if m in WIDE_INT_MODES or m == "F"]
        plain = [(m, n) for m, n in converted if (m, n) not in alpha + wide]
        groups = []
        for items, note in ((alpha, f" (alpha composited on {background_name(background)})"),
                            (wide, " (scaled to 8-bit)"), (plain, "")):
            if items:
                groups.append(", ".join(f"{n:,} {_mode_label(m)}" for m, n in items) + note)
        parts.append(f"converted to {target}: " + ", ".join(groups))
    else:
        parts.append(f"all {len(records):,} already {target}")
    cropped = sum(r.width != r.height for r in records)
    resized = [r for r in records if min(r.width, r.height) != resolution]
    upscaled = sum(min(r.width, r.height) < resolution for r in records)
    if cropped:
        parts.append(f"{cropped:,} non-square centre-cropped")
    if resized:
        up = f", {upscaled:,} of them upscaled" if upscaled else ""
        parts.append(f"{len(resized):,} resized to {resolution}x{resolution} "
                     f"({RESIZE_FILTER_NAME}{up})")
    rotated = sum(r.rotated for r in records)
    if rotated:
        parts.append(f"{rotated:,} turned upright by their EXIF orientation")
    multi = sum(r.frames > 1 for r in records)
    if multi:
        parts.append(f"{multi:,} multi-frame files: first frame used")
    return "; ".join(parts)


# -- decoding many files straight into the cache ------------------------------------------------
def decode_into(jobs: list[tuple[int, str]], npy_path: str, resolution: int, channels: int,
                background: float) -> list[tuple[int, Decoded | str]]:
    """Decode each ``(row, path)`` of ``jobs`` into row ``row`` of the ``.npy`` at
    ``npy_path`` (opened memory-mapped, so a worker process writes its rows in place and
    sends back only what it did). Returns ``(row, Decoded)`` per file, or ``(row, reason)``
    for a file that could not be decoded."""
    out = np.load(npy_path, mmap_mode="r+")
    done: list[tuple[int, Decoded | str]] = []
    for row, path in jobs:
        try:
            pixels, info = decode_file(path, resolution, channels, background)
        except Exception as exc:  # noqa: BLE001 - any failure is this file's problem
            done.append((row, describe_failure(exc)))
            continue
        out[row] = pixels
        done.append((row, info))
    out.flush()
    del out
    return done


def describe_failure(exc: BaseException) -> str:
    """Why a file could not be decoded, in a few words."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "truncated" in text.lower():
        return f"is truncated ({text})"
    if type(exc).__name__ == "UnidentifiedImageError":
        return "is not an image Pillow can read"
    return f"cannot be decoded ({type(exc).__name__}: {text})"


def resize_gray(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 ``[N, H, W]`` square gray images -> ``[N, R, R]`` with the Lanczos filter."""
    if images.shape[1:] == (resolution, resolution):
        return images
    out = np.empty((images.shape[0], resolution, resolution), dtype=np.uint8)
    for i, a in enumerate(images):
        out[i] = np.asarray(Image.fromarray(a, "L").resize((resolution, resolution),
                                                           RESIZE_FILTER))
    return out
