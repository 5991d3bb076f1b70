"""The dataset registry: the names a user can pass, and where each one's images come from.

* ``mnist-5k``: the 5,000-image MNIST subset (500 per digit) shipped inside the package;
* ``mnist``: full MNIST from IDX files under ``--data-dir`` (torchvision's layout too), or
  downloaded by torchvision with ``--download``; missing, a one-line error naming the fixes
  (a run records exactly the data it trained on, so it never swaps in the subset);
* ``fashion-mnist``: IDX files under ``--data-dir`` or Debian's ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import enum
import os
from importlib import resources
from pathlib import Path

from ..errors import DataError, UserError
from .idx import find_idx_files, load_idx_pair
from .images import ImageSet

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


class Dataset(str, enum.Enum):
    MNIST_5K = "mnist-5k"
    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"

    @property
    def classifier(self) -> Dataset:
        """The dataset whose shipped evaluation classifier measures this one (same domain)."""
        return Dataset.FASHION_MNIST if self is Dataset.FASHION_MNIST else Dataset.MNIST_5K

    def __str__(self) -> str:
        return self.value


DATASETS = tuple(d.value for d in Dataset)


def dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name``; UserError listing the choices otherwise."""
    try:
        return Dataset(name)
    except ValueError:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") \
            from None


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
) -> ImageSet:
    """Load a dataset by name into memory.

    ``mnist-5k`` is embedded. ``mnist`` and ``fashion-mnist`` are read from IDX files under
    ``data_dir`` (or, for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``); with
    ``download=True`` torchvision fetches them when a network exists.

    Raises:
        DataError: when the files are not found (the message names the fixes).
    """
    name = dataset(name)
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
