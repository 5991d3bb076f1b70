"""The dataset registry: the names a user can pass, and where each one's images come from.

* ``mnist-5k``: the 5,000-image MNIST subset (500 per digit) shipped inside the package;
* ``mnist``: full MNIST from IDX files under ``--data-dir`` (torchvision's layout too), or
  downloaded by torchvision with ``--download``; missing, a one-line error naming the fixes
  (a run records exactly the data it trained on, so it never swaps in the subset);
* ``fashion-mnist``: IDX files under ``--data-dir`` or Debian's ``dataset-fashion-mnist``;
* ``emoji`` / ``emoji-skin-tones``: Noto Color Emoji rendered at 64x64 RGB, labelled by group
  (:mod:`.emoji`);
* ``folder``: any image folder, ``--data-dir DIR`` (or the folder's path as the name), class
  subfolders for labels (:mod:`.folder`).

The MNIST-like sets are 28x28 grayscale; ``resolution`` / ``channels`` other than that resize
them with the same Lanczos filter as folders and copy the gray value to R, G and B.
"""

from __future__ import annotations

import enum
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import DataError, UserError
from .decode import RESIZE_FILTER_NAME, resize_gray
from .emoji import EMOJI_BACKGROUND, emoji_cache
from .folder import (
    FolderRequest,
    folder_channels,
    imageset_from_cache,
    load_folder,
    prepared_caches,
    scan_folder,
)
from .idx import find_idx_files, load_idx_pair
from .images import ImageSet

if TYPE_CHECKING:
    from ..config import TrainConfig

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
RESOLUTIONS = (28, 32, 64)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


class Dataset(str, enum.Enum):
    MNIST_5K = "mnist-5k"
    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"
    EMOJI = "emoji"
    EMOJI_SKIN_TONES = "emoji-skin-tones"
    FOLDER = "folder"

    @property
    def mnist_like(self) -> bool:
        """28x28 grayscale digits or garments from IDX files."""
        return self in (Dataset.MNIST_5K, Dataset.MNIST, Dataset.FASHION_MNIST)

    @property
    def emoji(self) -> bool:
        return self in (Dataset.EMOJI, Dataset.EMOJI_SKIN_TONES)

    @property
    def resolution(self) -> int:
        """The side a run uses when ``--resolution`` is 0."""
        return 28 if self.mnist_like else 64

    @property
    def background(self) -> float:
        """The background gray a run uses when ``--background`` is not given."""
        return EMOJI_BACKGROUND if self.emoji else 0.0

    @property
    def classifier(self) -> Dataset:
        """The dataset whose evaluation classifier measures this one (same domain)."""
        if self.mnist_like:
            return Dataset.FASHION_MNIST if self is Dataset.FASHION_MNIST else Dataset.MNIST_5K
        return self

    def __str__(self) -> str:
        return self.value


DATASETS = tuple(d.value for d in Dataset)


def dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name`` (an existing folder's path: ``folder``);
    UserError listing the choices otherwise."""
    try:
        return Dataset(name)
    except ValueError:
        if name and Path(name).expanduser().is_dir():
            return Dataset.FOLDER
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or "
                        "give an image folder's path") from None


def dataset_and_dir(name: str, data_dir: str | None) -> tuple[Dataset, str | None]:
    """``(dataset, data_dir)`` with a folder path given as the dataset's name moved to
    ``data_dir`` (absolute, so the run's config names the folder wherever it is read)."""
    kind = dataset(name)
    if kind is Dataset.FOLDER:
        if name != Dataset.FOLDER.value:
            if data_dir and Path(data_dir).resolve() != Path(name).resolve():
                raise UserError(f"--dataset {name} and --data-dir {data_dir} name two "
                                "folders; pass the image folder once")
            data_dir = name
        if not data_dir:
            raise UserError("--dataset folder needs --data-dir DIR, the image folder (class "
                            "subfolders for labels, or flat)")
        data_dir = str(Path(data_dir).expanduser().resolve())
    return kind, data_dir


# ---------------------------------------------------------------------------------------------
def embedded_subset() -> ImageSet:
    """The 5,000-image MNIST subset (500 per digit) shipped inside the package."""
    assets = resources.files("gan_accel") / "assets"
    with resources.as_file(assets / "mnist5k-images-idx3-ubyte.gz") as img, \
            resources.as_file(assets / "mnist5k-labels-idx1-ubyte.gz") as lbl:
        data = load_idx_pair(Path(img), Path(lbl), "mnist-5k")
    data.source = "the embedded MNIST subset, 500 per digit"
    return data


def _download_with_torchvision(name: str, root: Path, train: bool) -> ImageSet | None:
    from torchvision import datasets

    cls = datasets.MNIST if name is Dataset.MNIST else datasets.FashionMNIST
    try:
        cls(str(root), train=train, download=True)
    except Exception:  # noqa: BLE001 - any network failure means "not available"
        return None
    pair = find_idx_files(root, train)
    return load_idx_pair(*pair, name.value) if pair else None


def load_dataset(
    name: str = "mnist-5k",
    data_dir: str | os.PathLike | None = None,
    *,
    train: bool = True,
    download: bool = False,
    log=print,
    resolution: int = 0,
    channels: int = 0,
    background: float | None = None,
    progress: bool = False,
    memory_budget: int | None | str = "auto",
) -> ImageSet:
    """Load a dataset by name (or an image folder's path) at a resolution and channel count.

    ``mnist-5k`` is embedded. ``mnist`` and ``fashion-mnist`` are read from IDX files under
    ``data_dir`` (or, for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``); with
    ``download=True`` torchvision fetches them when a network exists. ``emoji`` renders
    Debian's colour emoji font, ``folder`` reads the image folder ``data_dir``; both through
    a decoded cache (see :mod:`gan_accel.data.folder`).

    Args:
        resolution, channels: 0 for the dataset's own (MNIST-like 28 / 1, emoji 64 / 3,
            folders 64 / 1 when every image is gray else 3).
        background: the gray in [0, 1] transparency is composited on (None: the dataset's
            own, white for emoji, black otherwise).
        progress: a progress bar while a folder is decoded.
        memory_budget: bytes the set may take in memory for training ("auto": half the
            available memory or ``$GAN_ACCEL_DATA_MEMORY``; None: no limit); a larger
            folder streams from its memory-mapped cache (``ImageSet.streamed``).

    Raises:
        DataError: when the files are not found, unreadable or inconsistent (the message
            names the file and the fix).
    """
    kind, data_dir = dataset_and_dir(str(name), None if data_dir is None else str(data_dir))
    if resolution and resolution not in RESOLUTIONS:
        raise UserError(f"--resolution {resolution} is not one of "
                        f"{', '.join(map(str, RESOLUTIONS))}")
    resolution, background = _own_defaults(kind, data_dir, resolution, background)
    if not kind.mnist_like and not train:
        raise DataError(f"the {kind} dataset has no separate test split; hold images out "
                        "with ImageSet.split")
    if kind is Dataset.FOLDER:
        return load_folder(data_dir, FolderRequest(resolution, channels, background), log=log,
                           progress=progress, budget=memory_budget)
    if kind.emoji:
        cache_dir, manifest = emoji_cache(resolution, channels or 3, background,
                                          kind is Dataset.EMOJI_SKIN_TONES, data_dir, log=log,
                                          progress=progress)
        data = imageset_from_cache(cache_dir, manifest, kind.value, log, None)
        log(f"{kind}: {len(data):,} images in {data.num_classes} groups, {resolution}x"
            f"{resolution}; {manifest['summary']}")
        return data
    data = _load_idx_dataset(kind, data_dir, train, download)
    data.class_names = FASHION_CLASSES if kind is Dataset.FASHION_MNIST else \
        tuple(str(d) for d in range(10))
    return reshape_gray_set(data, resolution, channels or 1, log)


def reshape_gray_set(data: ImageSet, resolution: int, channels: int, log) -> ImageSet:
    """A 28x28 grayscale set at ``resolution`` (Lanczos) with ``channels`` (gray copied)."""
    if (resolution, channels) == (data.resolution, data.channels):
        return data
    said = []
    images = data.images
    if resolution != data.resolution:
        images = torch.from_numpy(resize_gray(images[:, 0].numpy(), resolution)).unsqueeze(1)
        said.append(f"resized from {data.resolution}x{data.resolution} to {resolution}x"
                    f"{resolution} ({RESIZE_FILTER_NAME})")
    if channels == 3:
        images = images.expand(-1, 3, -1, -1).contiguous()
        said.append("gray copied to R, G and B")
    log(f"{data.name}: {len(data):,} images " + ", ".join(said))
    data.images = images
    return data


def _single_prepared_cache(kind: Dataset, data_dir: str | None) -> dict | None:
    """The manifest of the one prepared cache a folder dataset's ``data_dir`` is, if so."""
    if kind is not Dataset.FOLDER or not Path(data_dir).is_dir():
        return None
    prepared = prepared_caches(Path(data_dir))
    return prepared[0][1] if len(prepared) == 1 else None


def _own_defaults(kind: Dataset, data_dir: str | None, resolution: int,
                  background: float | None) -> tuple[int, float]:
    """``resolution`` and ``background`` with 0 / None replaced by the dataset's own (a
    prepared cache's are the ones it was decoded with)."""
    manifest = _single_prepared_cache(kind, data_dir)
    if manifest is not None:
        return resolution or manifest["resolution"], \
            manifest["background"] if background is None else background
    return resolution or kind.resolution, kind.background if background is None else background


def resolve_image_shape(cfg: TrainConfig) -> tuple[int, int]:
    """``(channels, resolution)`` the run's data will have: the config's, 0 filled from the
    data without decoding it (registered sets know theirs; a folder reads a cache manifest
    of its current contents or its files' headers)."""
    kind, data_dir = dataset_and_dir(cfg.dataset, cfg.data_dir)
    resolution, _ = _own_defaults(kind, data_dir, cfg.resolution, cfg.background)
    channels = cfg.channels
    if not channels and kind is Dataset.FOLDER:
        manifest = _single_prepared_cache(kind, data_dir)
        if manifest is not None:
            channels = manifest["channels"]
        elif not Path(data_dir).is_dir():
            raise DataError(f"--data-dir {data_dir} is not a directory; fix the path to the "
                            "image folder")
        else:
            channels = folder_channels(scan_folder(Path(data_dir)))
    return channels or (1 if kind.mnist_like else 3), resolution


def resolve_data_config(cfg: TrainConfig) -> TrainConfig:
    """Fill in ``cfg``'s data fields (in place, and return it): a folder path given as the
    dataset becomes ``folder`` + an absolute ``data_dir``, and ``resolution``, ``channels``
    and ``background`` get the concrete values the run trains with (see
    :func:`resolve_image_shape`), so a run's config records exactly its data."""
    kind, data_dir = dataset_and_dir(cfg.dataset, cfg.data_dir)
    channels, resolution = resolve_image_shape(cfg)
    _, background = _own_defaults(kind, data_dir, resolution, cfg.background)
    cfg.dataset, cfg.data_dir = kind.value, data_dir
    cfg.resolution, cfg.channels, cfg.background = resolution, channels, float(background)
    return cfg


def _load_idx_dataset(name: Dataset, data_dir: str | os.PathLike | None, train: bool,
                      download: bool) -> ImageSet:
    """An MNIST-like set at its own 28x28 grayscale."""
    if name is Dataset.MNIST_5K:
        return embedded_subset()
    roots = [Path(data_dir)] if data_dir else [Path("data")]
    if data_dir and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a directory; create it or fix the path")
    if name is Dataset.FASHION_MNIST and not data_dir:
        roots.append(FASHION_MNIST_DEBIAN)
    for root in roots:
        pair = find_idx_files(root, train)
        if pair:
            return load_idx_pair(*pair, name.value)
    if download:
        got = _download_with_torchvision(name, roots[0], train)
        if got is not None:
            return got
    where = " or ".join(str(r) for r in roots)
    if name is Dataset.FASHION_MNIST:
        raise DataError(
            f"Fashion-MNIST IDX files not found in {where}; install Debian's "
            "dataset-fashion-mnist, pass --data-dir DIR, or add --download"
        )
    raise DataError(
        f"full MNIST IDX files not found in {where}"
        + (" and could not be downloaded" if download else "")
        + "; put them in DIR or DIR/MNIST/raw and pass --data-dir DIR, add --download with a "
        "network, or train on the embedded subset with --dataset mnist-5k"
    )
