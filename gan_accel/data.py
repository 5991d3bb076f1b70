"""Datasets: MNIST-format IDX files and the embedded 5,000-image MNIST subset.

Everything is loaded once into memory as a uint8 tensor ``[N, 28, 28]`` plus int64 labels
``[N]``; :class:`BatchIterator` then serves shuffled batches by indexing that tensor, so the
hot loop does no per-item work.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .errors import DataError, UserError

DATASETS = ("mnist-5k", "mnist", "fashion-mnist")
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim
_SPLIT_PREFIX = {True: "train", False: "t10k"}


@dataclass
class ImageSet:
    """A whole dataset in memory.

    images: uint8 ``[N, H, W]``; labels: int64 ``[N]``; ``source`` says where it came from.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    source: str
    num_classes: int = 10

    def __len__(self) -> int:
        return self.images.shape[0]

    def split(self, holdout: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
        """Deterministic class-stratified split: (rest, holdout) with ``holdout`` images."""
        gen = torch.Generator().manual_seed(seed)
        per_class = holdout // self.num_classes
        held = []
        for c in range(self.num_classes):
            idx = (self.labels == c).nonzero().flatten()
            held.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
        held_idx = torch.cat(held).sort().values
        mask = torch.ones(len(self), dtype=torch.bool)
        mask[held_idx] = False
        rest_idx = mask.nonzero().flatten()
        return (
            ImageSet(self.name, self.images[rest_idx], self.labels[rest_idx],
                     f"{self.source} minus {len(held_idx)} held out", self.num_classes),
            ImageSet(self.name, self.images[held_idx], self.labels[held_idx],
                     f"{self.source}, held-out {len(held_idx)}", self.num_classes),
        )


# ---------------------------------------------------------------------------------------------
# IDX parsing
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


# ---------------------------------------------------------------------------------------------
# Named datasets
# ---------------------------------------------------------------------------------------------
def embedded_subset() -> ImageSet:
    """The 5,000-image MNIST subset (500 per digit) shipped inside the package."""
    assets = resources.files("gan_accel") / "assets"
    with resources.as_file(assets / "mnist5k-images-idx3-ubyte.gz") as img, \
            resources.as_file(assets / "mnist5k-labels-idx1-ubyte.gz") as lbl:
        data = load_idx_pair(Path(img), Path(lbl), "mnist-5k")
    data.source = "embedded MNIST subset (5,000 images, 500 per digit)"
    return data


def _download_with_torchvision(name: str, root: Path, train: bool) -> ImageSet | None:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        cls(str(root), train=train, download=True)
    except Exception:  # noqa: BLE001 - any network failure means "not available"
        return None
    pair = find_idx_files(root, train)
    return load_idx_pair(*pair, name) if pair else None


def load_dataset(
    name: str = "mnist-5k",
    data_dir: str | os.PathLike | None = None,
    *,
    train: bool = True,
    download: bool = False,
    log=print,
) -> ImageSet:
    """Load a dataset by name into memory.

    ``mnist-5k`` is embedded. ``mnist`` and ``fashion-mnist`` are read from IDX files under
    ``data_dir`` (or, for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``); with
    ``download=True`` torchvision fetches them when a network exists. Full MNIST that cannot be
    found falls back to the embedded subset with one line saying so.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "mnist-5k":
        return embedded_subset()
    roots = [Path(data_dir)] if data_dir else [Path("data")]
    if data_dir and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a directory; create it or fix the path")
    if name == "fashion-mnist" and not data_dir:
        roots.append(FASHION_MNIST_DEBIAN)
    for root in roots:
        pair = find_idx_files(root, train)
        if pair:
            return load_idx_pair(*pair, name)
    if download:
        got = _download_with_torchvision(name, roots[0], train)
        if got is not None:
            return got
    where = " or ".join(str(r) for r in roots)
    if name == "fashion-mnist":
        raise DataError(
            f"Fashion-MNIST IDX files not found in {where}; install Debian's "
            "dataset-fashion-mnist, pass --data-dir DIR, or add --download"
        )
    log(
        f"full MNIST not found in {where}"
        + (" and could not be downloaded" if download else "")
        + "; using the embedded 5,000-image subset instead (put the IDX files in "
        "DIR or DIR/MNIST/raw and pass --data-dir DIR, or add --download with a network)"
    )
    return embedded_subset()


# ---------------------------------------------------------------------------------------------
# Tensors for training
# ---------------------------------------------------------------------------------------------
OUTPUT_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def to_model_range(images: torch.Tensor, output_range: str) -> torch.Tensor:
    """uint8 ``[N, H, W]`` -> float32 ``[N, 1, H, W]`` in [0, 1] ('unit') or [-1, 1]."""
    x = images.unsqueeze(1).float().div_(255.0)
    if output_range == "symmetric":
        x = x.mul_(2.0).sub_(1.0)
    else:
        assert output_range == "unit", output_range
    return x


class BatchIterator:
    """Shuffled fixed-size batches from in-memory tensors, resumable mid-epoch.

    The order of epoch ``e`` is a permutation drawn from ``seed + e``, so the position
    ``(epoch, batch_index)`` alone restores the exact data order. A distributed run passes
    ``rank``/``world_size``: each rank takes an equal, disjoint stride of every permutation.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.x, self.y = x, y
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = len(x) // (batch_size * world_size)
        if self.batches_per_epoch < 1:
            raise UserError(
                f"batch size {batch_size} x {world_size} process(es) is larger than the "
                f"dataset ({len(x)} images); lower --batch-size"
            )

    def epoch(self, epoch: int, start: int = 0):
        """Yield ``(images, labels)`` batches of epoch ``epoch`` from batch ``start`` on."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.x), generator=gen)
        used = self.batches_per_epoch * self.batch_size * self.world_size
        order = order[:used].view(self.batches_per_epoch, self.world_size, self.batch_size)
        order = order[:, self.rank].to(self.x.device)
        for b in range(start, self.batches_per_epoch):
            idx = order[b]
            yield self.x[idx], self.y[idx]
