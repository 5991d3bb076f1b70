"""Small shared test utilities."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray, magic: int, gz: bool = False) -> Path:
    """Write an MNIST-format IDX file (optionally gzipped)."""
    blob = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    blob += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def tiny_mnist(folder: Path, n: int = 40, gz: bool = True, prefix: str = "train",
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write a tiny random images/labels IDX pair under ``folder``."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    sfx = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", images, 2051, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", labels, 2049, gz)
    return images, labels


def run_module(module: str, *args: str, timeout: float = 600, env=None):
    """Run ``python -m module args`` from the repo root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)
