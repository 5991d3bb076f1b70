"""The pixel ranges a generator can produce, and the one pair of mappings to and from them.

Torch-free: the mappings use only arithmetic and ``clip``, so they work on torch tensors and
numpy arrays alike (the ONNX runtime uses them without torch).
"""

from __future__ import annotations

import enum


class OutputRange(str, enum.Enum):
    """A generator's output range; the training data is mapped into it."""

    UNIT = "unit"  # [0, 1], Sigmoid output
    SYMMETRIC = "symmetric"  # [-1, 1], Tanh output

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 1.0) if self is OutputRange.UNIT else (-1.0, 1.0)

    def from_unit(self, x):
        """[0, 1] pixels -> this range."""
        return x if self is OutputRange.UNIT else x * 2.0 - 1.0

    def to_unit(self, x):
        """This range -> [0, 1] pixels (clipped), for display and the evaluation classifier."""
        if self is OutputRange.SYMMETRIC:
            x = (x + 1.0) / 2.0
        return x.clip(0.0, 1.0)

    def __str__(self) -> str:
        return self.value
