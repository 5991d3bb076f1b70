"""Data: the dataset registry, IDX parsing, and batches for training.

Everything is loaded once into memory as a uint8 tensor ``[N, C, H, W]`` plus int64 labels
``[N]``; :class:`BatchIterator` then serves shuffled batches by indexing that tensor, so the
hot loop does no per-item work.
"""

from .batches import BatchIterator, to_model_range
from .datasets import (
           DATASETS,
           FASHION_MNIST_DEBIAN,
           Dataset,
           dataset,
           embedded_subset,
           load_dataset,
)
from .idx import find_idx_files, load_idx_pair, parse_idx, read_idx
from .images import ImageSet

__all__ = ["DATASETS", "FASHION_MNIST_DEBIAN", "BatchIterator", "Dataset", "ImageSet",
           "dataset", "embedded_subset", "find_idx_files", "load_dataset", "load_idx_pair",
           "parse_idx", "read_idx", "to_model_range"]
