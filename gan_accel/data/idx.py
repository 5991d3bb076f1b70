"""MNIST-format IDX files (raw or gzip): parsing with clear errors, and finding them on disk."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import ImageSet

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim
_SPLIT_PREFIX = {True: "train", False: "t10k"}

# How much memory a loaded IDX payload costs in training: the uint8 images plus their float32
# copy in the model's range (the whole dataset lives in memory, see gan_accel.data).
MEMORY_PER_PAYLOAD_BYTE = 5
_CHUNK = 1 << 20


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _parse_header(head: bytes, name: str) -> tuple[list[int], int]:
    """(dims, header length) from the first bytes of an IDX file; DataError naming ``name``."""
    if len(head) < 4:
        raise DataError(f"{name} is truncated: {len(head)} bytes, no IDX header")
    zero, dtype_code, ndim = int.from_bytes(head[:2], "big"), head[2], head[3]
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        magic = int.from_bytes(head[:4], "big")
        raise DataError(
            f"{name} has wrong magic number {magic:#010x}; expected an MNIST-format IDX file "
            f"({IDX_IMAGES_MAGIC:#010x} images or {IDX_LABELS_MAGIC:#010x} labels)"
        )
    header = 4 + 4 * ndim
    if len(head) < header:
        raise DataError(f"{name} is truncated inside its header; re-download it")
    return [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)], header


def _size_mismatch(name: str, payload: int, dims: list[int], expected: int) -> DataError:
    return DataError(
        f"{name} holds {payload} data bytes but its header {dims} needs {expected}; "
        "the file is truncated or corrupt, re-download it"
    )


def _check_fits_in_memory(name: str, dims: list[int], expected: int) -> None:
    memory = physical_memory()
    needed = expected * MEMORY_PER_PAYLOAD_BYTE
    if memory is not None and needed > memory:
        raise DataError(
            f"{name}'s header claims {dims[0]:,} items ({expected / 2**30:.1f} GiB of pixels, "
            f"about {needed / 2**30:.0f} GiB in memory for training) but this machine has "
            f"{memory / 2**30:.0f} GiB; the header is corrupt, or use a subset of the data"
        )


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an IDX (MNIST format) blob of unsigned bytes into an array.

    Raises DataError naming ``name`` for a bad magic number, a bad header, or a size mismatch.
    """
    dims, header = _parse_header(data[:16], name)
    expected = math.prod(dims)
    payload = len(data) - header
    if payload != expected:
        raise _size_mismatch(name, payload, dims, expected)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_header(f, name: str) -> tuple[list[int], int]:
    """Read and parse an IDX header from the stream ``f`` (magic word, then one word per dim)."""
    head = f.read(4)
    if len(head) == 4 and head[3] in (1, 3):
        head += f.read(4 * head[3])
    return _parse_header(head, name)


def _read_payload(f, name: str, expected: int) -> bytearray:
    """Exactly ``expected`` bytes from ``f``, read in chunks, so memory grows only with what
    the file really holds; DataError when it holds fewer or more."""
    buf = bytearray()
    while len(buf) <= expected:
        chunk = f.read(min(_CHUNK, expected + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
    if len(buf) > expected:
        raise DataError(f"{name} holds more data than its header needs ({expected} bytes); "
                        "the file is corrupt, re-download it")
    if len(buf) < expected:
        raise DataError(f"{name} is truncated: {len(buf)} data bytes, its header needs "
                        f"{expected}; re-download it")
    return buf


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) into a uint8 array.

    The header is read first and checked against the file's size (raw files) and this
    machine's memory before any data is read; a ``.gz`` file is decompressed in chunks and
    never past what its header claims. DataError naming the file otherwise.
    """
    path = Path(path)
    name = str(path)
    try:
        with open(path, "rb") as raw:
            f = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
            dims, header = _read_header(f, name)
            expected = math.prod(dims)
            if f is raw:
                payload = os.fstat(raw.fileno()).st_size - header
                if payload != expected:
                    raise _size_mismatch(name, payload, dims, expected)
            _check_fits_in_memory(name, dims, expected)
            data = _read_payload(f, name, expected)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc}); re-download or replace it") \
            from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def load_idx_pair(images_path: Path, labels_path: Path, name: str) -> ImageSet:
    """Load an images/labels IDX pair, checking that they agree."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path} is not an image file (IDX with {images.ndim} dims)")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} is not a label file (IDX with {labels.ndim} dims)")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has "
            f"{labels.shape[0]} labels; the pair does not match"
        )
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path} holds {images.shape[1:]} images; 28x28 expected")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path} has label {int(labels.max())}; labels 0-9 expected")
    return ImageSet(
        name=name,
        images=torch.from_numpy(images.copy()).unsqueeze(1),  # [N, 1, 28, 28]
        labels=torch.from_numpy(labels.astype(np.int64)),
        source=f"{images_path.parent}",
    )


def find_idx_files(root: Path, train: bool) -> tuple[Path, Path] | None:
    """Find ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` under ``root``.

    Looks in ``root`` itself and in torchvision's ``root/MNIST/raw`` and
    ``root/FashionMNIST/raw`` layouts.
    """
    prefix = _SPLIT_PREFIX[train]
    for folder in (root, root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        found = []
        for kind in ("images-idx3", "labels-idx1"):
            for suffix in ("", ".gz"):
                p = folder / f"{prefix}-{kind}-ubyte{suffix}"
                if p.is_file():
                    found.append(p)
                    break
        if len(found) == 2:
            return found[0], found[1]
    return None


