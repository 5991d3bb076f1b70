"""Feature spaces: what every quality number is measured in, and its name.

* ``classifier-<key>``: the penultimate features (and class predictions) of the project's own
  classifier (:mod:`.classifier`): the shipped one of MNIST / Fashion-MNIST, or the one trained
  on a labelled folder's own training split (:mod:`.data_classifier`);
* ``random-cnn-seed<N>``: a fixed, randomly initialised CNN, for unlabelled folders (Naeem et
  al. 2020 show random embeddings are informative for FID-like metrics): no training, no
  download, the same weights on every machine. Never Inception, and never called so.

Inception FID runs only on request, from a local weights file (:mod:`.inception`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .metrics import pixel_scale

__all__ = ["SpaceKind", "SpaceChoice", "SPACE_CHOICES", "FeatureSpace", "RandomCNN",
           "random_cnn_space", "adapt_images", "RANDOM_CNN_SEED", "random_cnn_name"]

RANDOM_CNN_SEED = 0
RANDOM_CNN_WIDTHS = (32, 64, 128)
RANDOM_CNN_POOL = 2  # the last map is average-pooled to 2x2: 128 * 4 = 512 features
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's convert("L")


class SpaceKind(str, enum.Enum):
    """How a feature space was made."""

    CLASSIFIER = "classifier"  # the project's classifier: shipped, or trained on the data
    RANDOM_CNN = "random-cnn"  # a fixed random network

    def __str__(self) -> str:
        return self.value


class SpaceChoice(str, enum.Enum):
    """The feature space a user asks for (``--feature-space``)."""

    AUTO = "auto"  # labelled data: its classifier; unlabelled: random-cnn-seed0
    CLASSIFIER = SpaceKind.CLASSIFIER.value
    RANDOM_CNN = SpaceKind.RANDOM_CNN.value

    def __str__(self) -> str:
        return self.value


SPACE_CHOICES = tuple(c.value for c in SpaceChoice)


def random_cnn_name(seed: int = RANDOM_CNN_SEED) -> str:
    return f"random-cnn-seed{seed}"


class RandomCNN(nn.Module):
    """A fixed, randomly initialised CNN: three conv(k4, s2, p1) + ReLU stages of 32, 64 and
    128 channels, then a 2x2 average pool: ``[B, C, R, R]`` in [0, 1] -> ``[B, 512]``.

    The weights are drawn from ``torch.Generator().manual_seed(seed)`` with He-normal scaling
    (biases 0), in construction order, so ``seed`` alone fixes the space.
    """

    def __init__(self, channels: int, seed: int = RANDOM_CNN_SEED) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        widths = (channels, *RANDOM_CNN_WIDTHS)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True))
        with torch.no_grad():
            for conv in self.convs:
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen)
                                  * math.sqrt(2.0 / fan_in))
                conv.bias.zero_()
        self.pool = nn.AdaptiveAvgPool2d(RANDOM_CNN_POOL)
        self.requires_grad_(False)
        self.eval()

    @property
    def feature_dim(self) -> int:
        return RANDOM_CNN_WIDTHS[-1] * RANDOM_CNN_POOL ** 2

    def features(self, x: Tensor) -> Tensor:
        x = x * 2.0 - 1.0  # centred inputs for zero-mean random filters
        for conv in self.convs:
            x = F.relu(conv(x))
        return torch.flatten(self.pool(x), 1)


def adapt_images(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """``[N, C, R, R]`` floats in [0, 1] -> ``shape`` ``(C', R', R')``: 3 -> 1 channels by
    ITU-R 601 luma, 1 -> 3 by repetition, then an antialiased bilinear resize."""
    c, r, _ = shape
    if x.shape[1] != c:
        if c == 1:
            x = (x * torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            x = x.expand(-1, c, -1, -1)
    if x.shape[-1] != r:
        x = F.interpolate(x, size=(r, r), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp(0.0, 1.0)
    return x


@dataclass
class FeatureSpace:
    """A named feature extractor for images of one shape ``(C, R, R)``.

    ``net`` has ``features(x)`` and, for a classifier space, ``features_and_logits(x)``; the
    images are adapted to ``net_shape`` first where it differs (e.g. Fashion-MNIST trained at
    32 px RGB, measured by the shipped 1 x 28 x 28 classifier).
    """

    name: str
    kind: SpaceKind
    net: nn.Module
    image_shape: tuple[int, int, int]  # the images measured
    net_shape: tuple[int, int, int]  # what the net takes
    class_names: tuple[str, ...] = ()  # empty: no class predictions
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_note(self) -> str:
        """How the images reach the net, e.g. ``3x32x32 -> 1x28x28 (luma, bilinear)``."""
        fmt = "x".join
        src, dst = fmt(map(str, self.image_shape)), fmt(map(str, self.net_shape))
        if src == dst:
            return src
        return f"{src} -> {dst} (ITU-R 601 luma / channel copy, antialiased bilinear resize)"

    def describe(self) -> dict[str, Any]:
        """JSON facts naming the space (every result carries them)."""
        out: dict[str, Any] = {"feature_space": self.name,
                               "feature_space_kind": self.kind.value,
                               "feature_space_input": self.input_note}
        if self.kind is SpaceKind.RANDOM_CNN:
            out["feature_space_note"] = ("a fixed randomly initialised CNN (no training, no "
                                         "download); not Inception: numbers compare only with "
                                         "numbers in the same space")
        return out

    def extract(self, images: Tensor, batch_size: int = 500
                ) -> tuple[Tensor, Tensor | None]:
        """Features (and class predictions, for a classifier space) of ``images``.

        Args:
            images: ``[N, C, R, R]`` uint8, or floats in ``[0, 1]``, of ``image_shape``.
            batch_size: images per forward pass.

        Returns:
            ``(features [N, F] float32, predictions [N] int64 or None)`` on CPU.
        """
        if images.dim() == 3 and self.image_shape[0] == 1:
            images = images.unsqueeze(1)
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"{self.name} measures images of shape [N, "
                             f"{', '.join(map(str, self.image_shape))}], got "
                             f"{tuple(images.shape)}")
        scale = pixel_scale(images)
        if images.shape[0] == 0:
            raise ValueError("images is empty")
        try:
            device = next(self.net.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        classify = self.kind is SpaceKind.CLASSIFIER
        was_training = self.net.training
        self.net.eval()
        feats, preds = [], []
        try:
            with torch.no_grad():
                for i in range(0, images.shape[0], batch_size):
                    xb = images[i: i + batch_size].to(device).float() * scale
                    xb = adapt_images(xb, self.net_shape)
                    if classify:
                        f, logits = self.net.features_and_logits(xb)
                        preds.append(logits.argmax(dim=1).cpu())
                    else:
                        f = self.net.features(xb)
                    feats.append(f.float().cpu())
        finally:
            self.net.train(was_training)
        return torch.cat(feats), (torch.cat(preds).long() if classify else None)


def random_cnn_space(image_shape: tuple[int, int, int], seed: int = RANDOM_CNN_SEED,
                     device: str | torch.device = "cpu") -> FeatureSpace:
    """The ``random-cnn-seed<seed>`` space for images of ``image_shape``."""
    net = RandomCNN(image_shape[0], seed).to(device)
    return FeatureSpace(random_cnn_name(seed), SpaceKind.RANDOM_CNN, net, tuple(image_shape),
                        tuple(image_shape), meta={"seed": str(seed)})
