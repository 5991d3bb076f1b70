"""The decoded-image cache: where it lives, what its manifest says, how it is written.

A cache is one folder named for its decoding parameters (``r64-c3-bg0``: resolution,
channels, background gray) holding

* ``images.npy``: uint8 ``[N, C, R, R]``, read whole or memory-mapped;
* ``labels.npy``: int64 ``[N]``;
* ``records.json``: one record per image (a folder's: path, size, mtime, label, source mode,
  stored size, EXIF rotation, frames), so a changed folder re-decodes only what changed;
* ``manifest.json``: the parameters, class names and counts, the source's digest (a hash of
  every file's path, size and modification time) and the conversion line. It is written
  last, so a cache without one is incomplete and never read.

Caches live beside the data (``DIR/.gan-accel/``) or, where that folder is not writable, in
the user's cache folder (``$XDG_CACHE_HOME/gan-accel``, default ``~/.cache/gan-accel``). A
new cache is written into a temporary folder and renamed into place, so an interrupted
decode leaves nothing a later run reads.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..atomic import disk_full_error, is_disk_full
from ..errors import DataError

CACHE_FORMAT = "gan-accel-image-cache"
CACHE_VERSION = 1
CACHE_DIRNAME = ".gan-accel"  # the cache folder inside a data folder
MANIFEST = "manifest.json"
DATA_MEMORY_ENV = "GAN_ACCEL_DATA_MEMORY"
# Training holds the uint8 images plus their float32 copy in the model's range.
MEMORY_PER_PIXEL = 5
MEMORY_SHARE = 0.5  # of the available memory a dataset may take in memory


def cache_name(resolution: int, channels: int, background: float) -> str:
    """The folder name of the cache for these decoding parameters."""
    return f"r{resolution}-c{channels}-bg{background:g}"


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/gan-accel`` (``~/.cache/gan-accel`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gan-accel"


def folder_cache_roots(folder: Path) -> list[Path]:
    """Where ``folder``'s caches may live, in order: beside the data, then the user cache
    (one folder per data folder, named by its path)."""
    tag = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return [folder / CACHE_DIRNAME, user_cache_root() / "folders" / f"{folder.name}-{tag}"]


def digest_of(*parts) -> str:
    """sha256 of the JSON of ``parts`` (a stable key for cache contents)."""
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


# -- reading ---------------------------------------------------------------------------------
def read_manifest(cache_dir: Path) -> dict | None:
    """The manifest of a complete cache in ``cache_dir``, None when there is none (or it is
    from another format version, or its arrays are missing)."""
    path = cache_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT \
            or manifest.get("version") != CACHE_VERSION:
        return None
    if not (cache_dir / "images.npy").is_file() or not (cache_dir / "labels.npy").is_file():
        return None
    return manifest


def read_records(cache_dir: Path) -> list | None:
    try:
        records = json.loads((cache_dir / "records.json").read_text())
    except (OSError, ValueError):
        return None
    return records if isinstance(records, list) else None


def open_images(cache_dir: Path, manifest: dict) -> np.ndarray:
    """The cache's images memory-mapped, checked against the manifest."""
    path = cache_dir / "images.npy"
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"the cache {path} is unreadable ({exc}); delete {cache_dir} and run "
                        "again to decode the images anew") from None
    r, c = manifest["resolution"], manifest["channels"]
    if images.dtype != np.uint8 or images.shape != (manifest["count"], c, r, r):
        raise DataError(f"the cache {path} holds {images.dtype} {images.shape}, not what its "
                        f"manifest says ({manifest['count']}, {c}, {r}, {r}); delete "
                        f"{cache_dir} and run again to decode the images anew")
    return images


def memory_budget() -> int | None:
    """Bytes a dataset may take in memory for training: half the available memory, or
    ``$GAN_ACCEL_DATA_MEMORY`` (e.g. ``500M``, ``8G``); None where neither is known."""
    text = os.environ.get(DATA_MEMORY_ENV)
    if text:
        return parse_bytes(text)
    available = available_memory()
    return None if available is None else int(available * MEMORY_SHARE)


def parse_bytes(text: str) -> int:
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in units else ""
    try:
        value = float(t[:-1] if unit else t)
    except ValueError:
        raise DataError(f"{DATA_MEMORY_ENV}={text!r} is not a size; use e.g. 500M or 8G") \
            from None
    return int(value * units[unit])


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (bytes), else the physical memory, else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


# -- writing ---------------------------------------------------------------------------------
def writable_root(roots: list[Path]) -> Path:
    """The first of ``roots`` a cache can be written to; DataError naming them all."""
    for root in roots:
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-", delete=True)
            probe.close()
            return root
        except OSError:
            continue
    raise DataError(f"cannot write the decoded-image cache to {' or '.join(map(str, roots))}; "
                    "make one writable or set XDG_CACHE_HOME to a writable folder")


class CacheWriter:
    """Writes one cache into a temporary folder beside its final place; :meth:`commit`
    renames it into place, :meth:`discard` removes it. Nothing half-written is ever read:
    readers need ``manifest.json``, which only a committed cache has."""

    def __init__(self, root: Path, name: str, count: int, channels: int, resolution: int):
        self.root, self.final, self.tmp = root, root / name, None
        shape = (count, channels, resolution, resolution)
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
            self.images_path = self.tmp / "images.npy"
            images = np.lib.format.open_memmap(self.images_path, mode="w+", dtype=np.uint8,
                                               shape=shape)
            del images  # workers open it by path
            _reserve(self.images_path)
        except OSError as exc:
            self.discard()
            raise self._error(exc, int(np.prod(shape))) from None

    def _error(self, exc: OSError, needed: int | None) -> DataError:
        hint = "free space there or set XDG_CACHE_HOME to a folder on another disk"
        if is_disk_full(exc):
            return disk_full_error(self.final / "images.npy", needed, hint, exc)
        return DataError(f"cannot write the cache in {self.root} ({exc.strerror or exc}); "
                         f"{hint}")

    def images(self) -> np.ndarray:
        return np.load(self.images_path, mmap_mode="r+")

    def commit(self, labels: np.ndarray, records: list, manifest: dict) -> Path:
        """Write the labels, records and manifest, then move the cache into place."""
        try:
            np.save(self.tmp / "labels.npy", labels.astype(np.int64))
            (self.tmp / "records.json").write_text(json.dumps(records, separators=(",", ":")))
            manifest = {"format": CACHE_FORMAT, "version": CACHE_VERSION,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **manifest}
            (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            self._replace_final()
        except OSError as exc:
            self.discard()
            raise self._error(exc, None) from None
        return self.final

    def _replace_final(self) -> None:
        if self.final.exists():  # a stale cache: move it aside, then remove it
            old = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old-", dir=self.root))
            os.replace(self.final, old / "cache")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(self.tmp, self.final)
        except OSError:
            if read_manifest(self.final) is None:  # not another run's complete cache
                raise
            self.discard()  # another run committed the same cache first: keep theirs

    def discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _reserve(path: Path) -> None:
    """Allocate the memory-mapped file's blocks now: a disk too small fails here, with an
    error, instead of killing a decoding process with SIGBUS when a page cannot be written."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return  # a file system without it: the blocks come as pages are written
            raise
