"""The emoji dataset: Noto Color Emoji rendered by Pillow, labelled by Unicode emoji group.

Sources, both Debian packages (``apt-get install fonts-noto-color-emoji unicode-data``), or
the same two files in ``--data-dir``:

* ``NotoColorEmoji.ttf``: a CBDT bitmap font whose one strike Pillow loads at size 109
  (glyphs of 136x128 pixels), drawn with ``embedded_color=True``;
* ``emoji-test.txt``: every emoji sequence with its status, group and subgroup.

Every fully-qualified emoji is one image, labelled by its group (9 groups; the subgroup and
the name are recorded in the cache's ``records.json``); skin-tone variants (U+1F3FB..1F3FF)
are left out unless asked for (``emoji-skin-tones``): 1,870 images without, 3,655 with them
(emoji-test.txt of Unicode 15.0). Each glyph is drawn centred on a transparent 136x136
canvas, composited on the background (white by default: emoji as most apps show them) and
resized to the resolution (64 by default) with the same Lanczos filter as image folders.
Rendered once into the same cache format as folders, in the user cache folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cache import (
    CacheWriter,
    cache_name,
    digest_of,
    read_manifest,
    user_cache_root,
    writable_root,
)
from .decode import Decoded, conversion_summary, prepare
from .workers import chunked, run_chunks, worker_count

DEBIAN_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
DEBIAN_EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
FONT_SIZE = 109  # the size of the font's one bitmap strike
GLYPH = (136, 128)  # a glyph's bitmap at that size (width, height)
CANVAS = 136  # square canvas the glyph is centred on
SKIN_TONES = range(0x1F3FB, 0x1F400)  # the five Fitzpatrick modifiers
EMOJI_BACKGROUND = 1.0
Log = Callable[[str], object]


@dataclass(frozen=True)
class Emoji:
    codepoints: tuple[int, ...]
    name: str
    group: str
    subgroup: str

    @property
    def text(self) -> str:
        return "".join(map(chr, self.codepoints))

    @property
    def skin_tone(self) -> bool:
        return any(c in SKIN_TONES for c in self.codepoints)


def emoji_sources(data_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(font, emoji-test.txt): from ``data_dir`` when given, else Debian's; DataError naming
    the packages when missing."""
    if data_dir:
        font, test = Path(data_dir) / DEBIAN_FONT.name, Path(data_dir) / DEBIAN_EMOJI_TEST.name
    else:
        font, test = DEBIAN_FONT, DEBIAN_EMOJI_TEST
    missing = [str(p) for p in (font, test) if not p.is_file()]
    if missing:
        raise DataError(f"the emoji dataset needs {' and '.join(missing)}; install them with "
                        "`apt-get install fonts-noto-color-emoji unicode-data`, or put "
                        f"{font.name} and {test.name} in a folder passed as --data-dir")
    return font, test


def read_emoji_test(path: Path, skin_tones: bool = False) -> list[Emoji]:
    """The fully-qualified emoji of ``emoji-test.txt`` in file order (skin-tone variants
    only with ``skin_tones``)."""
    group = subgroup = ""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            fields, _, comment = line.partition("#")
            codes, _, status = fields.partition(";")
            if status.strip() != "fully-qualified":
                continue
            words = comment.split(maxsplit=2)  # emoji, version (E1.0), name
            name = words[2] if len(words) == 3 else comment.strip()
            emoji = Emoji(tuple(int(c, 16) for c in codes.split()), name, group, subgroup)
            if skin_tones or not emoji.skin_tone:
                found.append(emoji)
    if not found:
        raise DataError(f"{path} lists no fully-qualified emoji; it is not Unicode's "
                        "emoji-test.txt (reinstall unicode-data)")
    return found


def render_emoji(font, text: str):
    """The emoji ``text``'s glyph centred on a transparent RGBA canvas of CANVAS x CANVAS
    pixels."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    top = (CANVAS - GLYPH[1]) // 2
    ImageDraw.Draw(im).text(((CANVAS - GLYPH[0]) // 2, top), text, font=font,
                            embedded_color=True)
    return im


def render_into(jobs: list[tuple[int, str]], npy_path: str, font_path: str, resolution: int,
                channels: int, background: float) -> list[tuple[int, bool]]:
    """Render each ``(row, emoji text)`` of ``jobs`` into row ``row`` of the memory-mapped
    ``.npy`` (a worker process's share); ``(row, False)`` for an emoji the font has no glyph
    for."""
    from PIL import ImageFont

    font = ImageFont.truetype(font_path, FONT_SIZE)
    out = np.load(npy_path, mmap_mode="r+")
    done = []
    for row, text in jobs:
        canvas = render_emoji(font, text)
        if canvas.getbbox() is None:
            done.append((row, False))
            continue
        out[row], _ = prepare(canvas, resolution, channels, background)
        done.append((row, True))
    out.flush()
    del out
    return done


def _render_cache(font_path: Path, emoji: list[Emoji], root: Path, name: str, resolution: int,
                  channels: int, background: float, source_digest: str, progress: bool,
                  log: Log, workers: int | None) -> tuple[Path, dict]:
    from PIL import ImageFont
    from tqdm.auto import tqdm

    try:
        ImageFont.truetype(str(font_path), FONT_SIZE)
    except OSError as exc:
        raise DataError(f"cannot load {font_path} at size {FONT_SIZE} ({exc}); reinstall "
                        "fonts-noto-color-emoji") from None
    groups = list(dict.fromkeys(e.group for e in emoji))
    labels = np.array([groups.index(e.group) for e in emoji], dtype=np.int64)
    writer = CacheWriter(root, name, len(emoji), channels, resolution)
    try:
        t0 = time.perf_counter()
        n = worker_count(len(emoji), workers)
        missing: list[int] = []
        bar = tqdm(total=len(emoji), unit="emoji", desc="rendering", leave=False,
                   disable=not progress, dynamic_ncols=True)

        def collect(results: list) -> None:
            missing.extend(row for row, ok in results if not ok)
            bar.update(len(results))

        try:
            run_chunks(render_into, chunked(enumerate(e.text for e in emoji)),
                       (str(writer.images_path), str(font_path), resolution, channels,
                        background), n, collect)
        finally:
            bar.close()
        if missing:
            e = emoji[min(missing)]
            raise DataError(f"{font_path} has no glyph for {e.name} "
                            f"({' '.join(f'U+{c:04X}' for c in e.codepoints)}) and "
                            f"{len(missing) - 1} other emoji; install a fonts-noto-color-emoji "
                            "as new as unicode-data")
        seconds = time.perf_counter() - t0
        records = [[" ".join(f"{c:04X}" for c in e.codepoints), e.name, e.group, e.subgroup]
                   for e in emoji]
        decoded = [Decoded("RGBA", CANVAS, CANVAS, False, 1)] * len(emoji)
        manifest = {
            "kind": "emoji", "source": f"{font_path.name} rendered by Pillow, labelled by "
            "group from emoji-test.txt", "count": len(emoji), "resolution": resolution,
            "channels": channels, "background": background, "class_names": groups,
            "class_counts": np.bincount(labels, minlength=len(groups)).tolist(),
            "subgroups": len({e.subgroup for e in emoji}), "source_digest": source_digest,
            "digest": digest_of(source_digest, resolution, channels, background),
            "source_modes": {"RGBA": len(emoji)}, "source_channels": 3,
            "summary": "rendered on a transparent canvas; "
            + conversion_summary(decoded, resolution, channels, background),
            "decode_seconds": round(seconds, 3), "workers": n,
        }
        final = writer.commit(labels, records, manifest)
    except BaseException:
        writer.discard()
        raise
    log(f"rendered {len(emoji):,} emoji in {seconds:.1f} s with {n} process"
        f"{'es' if n > 1 else ''} into the cache {final}")
    return final, manifest


def emoji_cache(resolution: int, channels: int, background: float, skin_tones: bool,
                data_dir: str | os.PathLike | None = None, *, log: Log = print,
                progress: bool = False, workers: int | None = None) -> tuple[Path, dict]:
    """(cache folder, manifest) of the rendered emoji set, rendering it on first use."""
    font, test = emoji_sources(data_dir)
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (font, test)]
    source_digest = digest_of(stats, skin_tones)
    name = cache_name(resolution, channels, background) + ("-skin-tones" if skin_tones else "")
    root = user_cache_root() / "emoji"
    manifest = read_manifest(root / name)
    if manifest is not None and manifest.get("source_digest") == source_digest:
        return root / name, manifest
    emoji = read_emoji_test(test, skin_tones)
    root = writable_root([root])
    return _render_cache(font, emoji, root, name, resolution, channels, background,
                         source_digest, progress, log, workers)
