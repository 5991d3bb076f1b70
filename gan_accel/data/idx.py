"""MNIST-format IDX files (raw or gzip): parsing with clear errors, and finding them on disk."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import ImageSet

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim
_SPLIT_PREFIX = {True: "train", False: "t10k"}

# ---------------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise DataError(
                f"{path} is not a valid gzip file ({exc}); re-download or replace it"
            ) from None
    return raw


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an IDX (MNIST format) blob of unsigned bytes into an array.

    Raises DataError naming ``name`` for a bad magic number, a bad header, or a size mismatch.
    """
    if len(data) < 4:
        raise DataError(f"{name} is truncated: {len(data)} bytes, no IDX header")
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        magic = int.from_bytes(data[:4], "big")
        raise DataError(
            f"{name} has wrong magic number {magic:#010x}; expected an MNIST-format IDX file "
            f"({IDX_IMAGES_MAGIC:#010x} images or {IDX_LABELS_MAGIC:#010x} labels)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} is truncated inside its header; re-download it")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header
    if payload != expected:
        raise DataError(
            f"{name} holds {payload} data bytes but its header {dims} needs {expected}; "
            "the file is truncated or corrupt, re-download it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) into a uint8 array."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


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
        images=torch.from_numpy(images.copy()),
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


