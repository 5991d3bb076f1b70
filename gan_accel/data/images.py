"""A whole labelled image set in memory."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    """A whole dataset in memory.

    images: uint8 ``[N, C, H, W]``; labels: int64 ``[N]``; ``source`` says where it came from.
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


