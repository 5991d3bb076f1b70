"""A whole labelled image set: in memory, or memory-mapped from the decoded cache."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch


class MappedImages:
    """uint8 ``[N, C, H, W]`` images read from a memory-mapped ``.npy`` on demand.

    Indexing gives a uint8 tensor like indexing the in-memory tensor does, so a set too large
    for memory streams through the same code.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.array = np.load(self.path, mmap_mode="r")  # [N, C, H, W] uint8
        assert self.array.dtype == np.uint8 and self.array.ndim == 4, self.array.shape

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def __len__(self) -> int:
        return self.array.shape[0]

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        return torch.from_numpy(np.ascontiguousarray(self.array[idx]))

    def load(self) -> torch.Tensor:
        """The whole set as one in-memory tensor."""
        return torch.from_numpy(np.array(self.array))


@dataclass
class ImageSet:
    """A whole dataset.

    images: uint8 ``[N, C, H, W]`` (a tensor, or :class:`MappedImages` when the set streams
    from its memory-mapped cache); labels: int64 ``[N]``; ``source`` says where it came from.
    ``num_classes`` is 0 for an unlabelled folder (labels then all 0), ``class_names`` names
    the labels (empty when unlabelled). ``background`` is the gray level in [0, 1] that
    transparent pixels were composited on, and the one augmentation fills shifted-in pixels
    with. ``cache_dir`` is the decoded cache the set was read from (None: not cached), and
    ``digest`` identifies its content (the source files' names, sizes and times plus the
    decoding parameters).
    """

    name: str
    images: torch.Tensor | MappedImages
    labels: torch.Tensor
    source: str
    num_classes: int = 10
    class_names: tuple[str, ...] = ()
    background: float = 0.0
    cache_dir: Path | None = None
    digest: str = ""
    data_dir: str | None = None  # the folder a folder dataset was read from

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def streamed(self) -> bool:
        """True when the images stream from the memory-mapped cache instead of memory."""
        return isinstance(self.images, MappedImages)

    def subset(self, idx: torch.Tensor, source: str) -> ImageSet:
        """The images at ``idx`` (in memory) with this set's class facts."""
        return replace(self, images=self.images[idx], labels=self.labels[idx], source=source)

    def split(self, holdout: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
        """Deterministic split: (rest, holdout) with ``holdout`` images, class-stratified
        (``holdout // num_classes`` per class) when the set is labelled, uniform otherwise."""
        gen = torch.Generator().manual_seed(seed)
        if self.num_classes:
            per_class = holdout // self.num_classes
            held = []
            for c in range(self.num_classes):
                idx = (self.labels == c).nonzero().flatten()
                held.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
            held_idx = torch.cat(held).sort().values
        else:
            held_idx = torch.randperm(len(self), generator=gen)[:holdout].sort().values
        mask = torch.ones(len(self), dtype=torch.bool)
        mask[held_idx] = False
        rest_idx = mask.nonzero().flatten()
        return (self.subset(rest_idx, f"{self.source} minus {len(held_idx)} held out"),
                self.subset(held_idx, f"{self.source}, held-out {len(held_idx)}"))
