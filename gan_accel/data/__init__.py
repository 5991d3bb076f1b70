"""Data: the dataset registry, IDX parsing, image folders and their cache, and batches.

A dataset is a uint8 tensor ``[N, C, H, W]`` plus int64 labels ``[N]`` (an
:class:`ImageSet`), in memory, or memory-mapped from its decoded cache when it would not fit;
:class:`BatchIterator` then serves shuffled batches by indexing it, so the hot loop does no
per-item work.
"""

from .batches import BatchIterator, to_model_range
from .cache import DATA_MEMORY_ENV, memory_budget, user_cache_root
from .datasets import (
           DATASETS,
           FASHION_MNIST_DEBIAN,
           RESOLUTIONS,
           Dataset,
           dataset,
           dataset_and_dir,
           embedded_subset,
           load_dataset,
           resolve_data_config,
           resolve_image_shape,
)
from .decode import RESIZE_FILTER_NAME
from .emoji import Emoji, emoji_sources, read_emoji_test
from .folder import FolderRequest, load_folder, scan_folder
from .idx import find_idx_files, load_idx_pair, parse_idx, read_idx
from .images import ImageSet, MappedImages

__all__ = ["DATASETS", "DATA_MEMORY_ENV", "FASHION_MNIST_DEBIAN", "RESIZE_FILTER_NAME",
           "RESOLUTIONS", "BatchIterator", "Dataset", "Emoji", "FolderRequest", "ImageSet",
           "MappedImages", "dataset", "dataset_and_dir", "embedded_subset", "emoji_sources",
           "find_idx_files", "load_dataset", "load_folder", "load_idx_pair", "memory_budget",
           "parse_idx", "read_emoji_test", "read_idx", "resolve_data_config",
           "resolve_image_shape", "scan_folder", "to_model_range", "user_cache_root"]
