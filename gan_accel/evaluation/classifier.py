"""The project's own CNN classifier, whose feature space the quality metrics use.

Inception-based FID is meaningless for 28x28 digits and its weights cannot be downloaded
here, so gan-accel measures sample quality in the 128-d penultimate feature space of the small
CNN defined in this module, trained by the project itself: once for MNIST and Fashion-MNIST
(weights shipped in ``gan_accel/assets/``), and once per labelled image folder on that
folder's own training split (cached beside the folder's cache; see :mod:`.data_classifier`).
Weights are safetensors files; :func:`load_classifier` reads them back without executing code.

Architecture, input ``[B, C, R, R]`` float in ``[0, 1]`` (C in 1, 3; R in 28, 32, 64)::

    [image-cnn-v1: x -> 2x - 1, centred]
    [R = 64: avgpool2 (32x32): the same net then sees 32x32 images]
    conv3x3(C->32)+ReLU -> maxpool2
    conv3x3(32->64)+ReLU -> maxpool2
    conv3x3(64->128)+ReLU -> adaptive avgpool (3x3)
    fc(1152->128)+ReLU            <- features(x): [B, 128]
    dropout(0.25) -> fc(128->K)   <- logits, K classes

At C=1, R=28, K=10 (``mnist-cnn-v1``, the shipped classifiers): 241,546 parameters, about
7.5 M multiply-adds per image. Any other shape is ``image-cnn-v1`` (the same layers; its
channels, resolution and classes are stored in the file's metadata).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ARCH_NAME",
    "IMAGE_ARCH_NAME",
    "FORMAT_NAME",
    "FEATURE_DIM",
    "NUM_CLASSES",
    "RESOLUTIONS",
    "ImageClassifier",
    "MnistClassifier",
    "build_classifier",
    "max_shift",
    "train_classifier",
    "accuracy",
    "save_classifier",
    "load_classifier",
    "u8_to_unit",
]

ARCH_NAME = "mnist-cnn-v1"  # 1 x 28 x 28, 10 classes: the shipped MNIST / Fashion classifiers
IMAGE_ARCH_NAME = "image-cnn-v1"  # the same layers for any channels, resolution and classes
FORMAT_NAME = "gan-accel-classifier"
FEATURE_DIM = 128
NUM_CLASSES = 10
IMAGE_SIZE = 28
RESOLUTIONS = (28, 32, 64)
CHANNELS = (1, 3)
# 64 px inputs are average-pooled to 32 px first: 4x cheaper to train on a CPU (whether
# 64 px would score higher on the emoji groups is not measured; docs/evaluation.md)
_INPUT_POOL = {28: 1, 32: 1, 64: 2}
_SHAPE_KEYS = ("channels", "resolution", "num_classes")


class ImageClassifier(nn.Module):
    """Small CNN for ``[B, C, R, R]`` images in ``[0, 1]`` (see the module docstring).

    ``forward(x)`` returns ``[B, K]`` logits, ``features(x)`` the ``[B, 128]`` penultimate
    (post-ReLU) features used by the metrics, and ``features_and_logits(x)`` both at once.
    """

    def __init__(self, channels: int = 1, num_classes: int = NUM_CLASSES,
                 resolution: int = IMAGE_SIZE) -> None:
        super().__init__()
        if channels not in CHANNELS or resolution not in RESOLUTIONS or num_classes < 2:
            raise ValueError(f"need channels in {CHANNELS}, resolution in {RESOLUTIONS} and "
                             f">= 2 classes; got {channels}, {resolution}, {num_classes}")
        self.channels, self.num_classes, self.resolution = channels, num_classes, resolution
        self.input_pool = _INPUT_POOL[resolution]
        self._centred = self.arch == IMAGE_ARCH_NAME  # the shipped mnist-cnn-v1 takes [0, 1]
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.pool_out = nn.AdaptiveAvgPool2d(3)
        self.fc1 = nn.Linear(128 * 3 * 3, FEATURE_DIM)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(FEATURE_DIM, num_classes)

    @property
    def arch(self) -> str:
        """``mnist-cnn-v1`` for the shipped shape, else ``image-cnn-v1``."""
        shipped = (self.channels, self.num_classes, self.resolution) == (1, NUM_CLASSES,
                                                                          IMAGE_SIZE)
        return ARCH_NAME if shipped else IMAGE_ARCH_NAME

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, R, R)``: the images this classifier takes."""
        return (self.channels, self.resolution, self.resolution)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features.

        Args:
            x: ``[B, C, R, R]`` float tensor with values in ``[0, 1]``.

        Returns:
            ``[B, 128]`` non-negative feature tensor.
        """
        if self._centred:
            # centred inputs: on light backgrounds (emoji, products) [0, 1] inputs train slowly
            x = x * 2.0 - 1.0
        if self.input_pool > 1:
            x = F.avg_pool2d(x, self.input_pool)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.pool_out(F.relu(self.conv3(x)))
        return F.relu(self.fc1(torch.flatten(x, 1)))

    def logits_from_features(self, feats: Tensor) -> Tensor:
        """Map ``[B, 128]`` features to ``[B, K]`` logits (dropout is active in train mode)."""
        return self.fc2(self.dropout(feats))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(features [B, 128], logits [B, K])`` in a single pass."""
        feats = self.features(x)
        return feats, self.logits_from_features(feats)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``[B, K]`` class logits for ``[B, C, R, R]`` inputs in ``[0, 1]``."""
        return self.logits_from_features(self.features(x))


class MnistClassifier(ImageClassifier):
    """The shipped shape: 1 x 28 x 28 digits or garments, 10 classes (``mnist-cnn-v1``)."""

    def __init__(self) -> None:
        super().__init__(1, NUM_CLASSES, IMAGE_SIZE)


def build_classifier(channels: int, num_classes: int, resolution: int) -> ImageClassifier:
    """A freshly initialised classifier for ``[B, channels, resolution, resolution]`` inputs
    (the shipped shape builds a :class:`MnistClassifier`: same layers, same init order)."""
    if (channels, num_classes, resolution) == (1, NUM_CLASSES, IMAGE_SIZE):
        return MnistClassifier()
    return ImageClassifier(channels, num_classes, resolution)


# --------------------------------------------------------------------------- input helpers


def u8_to_unit(images_u8: Tensor, shape: tuple[int, int, int] = (1, IMAGE_SIZE, IMAGE_SIZE)
               ) -> Tensor:
    """Convert uint8 images of ``shape`` ``(C, R, R)`` to ``[N, C, R, R]`` floats in [0, 1].

    ``[N, R, R]`` is read as one channel (the MNIST layout).
    """
    if images_u8.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got dtype {images_u8.dtype}")
    return _as_nchw(images_u8, shape).float().div_(255.0)


def _as_nchw(images: Tensor, shape: tuple[int, int, int]) -> Tensor:
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or tuple(images.shape[1:]) != tuple(shape):
        c, r, _ = shape
        raise ValueError(f"expected images of shape [N, {c}, {r}, {r}]"
                         + (f" or [N, {r}, {r}]" if c == 1 else "")
                         + f", got {tuple(images.shape)}")
    return images


def _check_labels(labels: Tensor, n: int, num_classes: int) -> Tensor:
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape [{n}], got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    labels = labels.long()
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def max_shift(resolution: int) -> int:
    """Largest random shift of the training augmentation: 2 px at 28/32, 4 px at 64."""
    return max(2, resolution // 16)


def _random_shift(x: Tensor, max_shift: int, gen: torch.Generator,
                  fill: float | Sequence[float] = 0.0) -> Tensor:
    """Shift each ``[B, C, H, W]`` image by an integer offset in ``[-max_shift, max_shift]``;
    the pixels shifted in take ``fill`` (the data's background: a scalar or one per channel)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    fill_t = torch.as_tensor(fill, dtype=x.dtype).reshape(-1)
    if bool((fill_t != 0).any()):
        border = torch.ones(1, 1, h, w, dtype=x.dtype)
        border = 1.0 - F.pad(border, (max_shift,) * 4)  # 1 where the pad added pixels
        padded = padded + border * fill_t.expand(c).reshape(1, c, 1, 1)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # [B, 1, 1, W]
    chans = torch.arange(c)[None, :, None, None]  # [1, C, 1, 1]
    return padded[torch.arange(b)[:, None, None, None], chans, rows, cols]


# --------------------------------------------------------------------------- training


def train_classifier(
    images_u8: Tensor,
    labels: Tensor,
    *,
    num_classes: int = NUM_CLASSES,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    augment: bool = True,
    fill: float | Sequence[float] = 0.0,
    log: Callable[[str], Any] | None = None,
) -> ImageClassifier:
    """Train an :class:`ImageClassifier` on CPU, deterministically for a given seed.

    Adam with a cosine learning-rate decay to zero over all steps, cross-entropy loss,
    optional random integer shifts (:func:`max_shift`). The global torch RNG state is saved
    and restored, so calling this has no side effect on other random streams.

    Args:
        images_u8: ``[N, C, R, R]`` uint8 images (``[N, 28, 28]``: MNIST digits).
        labels: ``[N]`` integer labels in ``[0, num_classes)``.
        num_classes: classes of the logits.
        epochs: passes over the data; ``0`` returns the seeded initial model untrained.
        batch_size: minibatch size (the last partial batch is kept).
        lr: peak Adam learning rate.
        seed: seeds initialisation, shuffling, augmentation and dropout.
        augment: apply random shifts.
        fill: the value of pixels shifted in: the data's background in [0, 1].
        log: optional callable receiving one progress line per epoch, e.g. ``print``.

    Returns:
        the trained model in eval mode, on CPU.
    """
    if images_u8.dim() == 3:
        images_u8 = images_u8.unsqueeze(1)
    if images_u8.dim() != 4 or images_u8.shape[-1] != images_u8.shape[-2]:
        raise ValueError(f"expected images [N, C, R, R], got {tuple(images_u8.shape)}")
    shape = tuple(images_u8.shape[1:])
    x_all = u8_to_unit(images_u8, shape)
    n = x_all.shape[0]
    y_all = _check_labels(labels, n, num_classes)
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(shape[0], num_classes, shape[1])
        shift = max_shift(shape[1])
        gen = torch.Generator().manual_seed(seed + 1)
        steps_per_epoch = math.ceil(n / batch_size)
        total_steps = max(1, epochs * steps_per_epoch)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
        model.train()
        for epoch in range(epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen)
            loss_sum, correct = 0.0, 0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                xb, yb = x_all[idx], y_all[idx]
                if augment:
                    xb = _random_shift(xb, shift, gen, fill)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += float(loss.detach()) * idx.numel()
                correct += int((logits.detach().argmax(1) == yb).sum())
            if log is not None:
                log(
                    f"epoch {epoch + 1}/{epochs} loss={loss_sum / n:.4f} "
                    f"train_acc={correct / n:.4f} time={time.perf_counter() - t0:.1f}s"
                )
    return model.eval()


@torch.no_grad()
def accuracy(model: ImageClassifier, images_u8: Tensor, labels: Tensor,
             batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on uint8 images.

    Args:
        model: an :class:`ImageClassifier` (or a module with ``image_shape`` and logits).
        images_u8: ``[N, C, R, R]`` uint8 images of the model's shape (``[N, 28, 28]`` too).
        labels: ``[N]`` integer labels.
        batch_size: evaluation batch size.

    Returns:
        fraction of correctly classified images (the model's train/eval mode is restored).
    """
    shape = getattr(model, "image_shape", (1, IMAGE_SIZE, IMAGE_SIZE))
    x_all = u8_to_unit(images_u8, shape)
    y_all = _check_labels(labels, x_all.shape[0], getattr(model, "num_classes", NUM_CLASSES))
    if x_all.shape[0] == 0:
        raise ValueError("cannot compute accuracy on an empty dataset")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for i in range(0, x_all.shape[0], batch_size):
            pred = model(x_all[i : i + batch_size].to(device)).argmax(1).cpu()
            correct += int((pred == y_all[i : i + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / x_all.shape[0]


# --------------------------------------------------------------------------- persistence


def save_classifier(
    model: ImageClassifier, path: str | os.PathLike, meta: Mapping[str, Any]
) -> None:
    """Save weights and metadata to a safetensors file (written atomically).

    Args:
        model: the classifier to save (any device; stored as CPU float32).
        path: destination file.
        meta: free-form metadata, e.g. dataset name, held-out accuracy, training command.
            Keys must be strings; values are stored with ``str()``. The keys ``format``,
            ``arch``, ``channels``, ``resolution`` and ``num_classes`` are reserved and filled
            in from the model.
    """
    from safetensors.torch import save_file

    if not isinstance(model, ImageClassifier):
        raise TypeError(f"expected an ImageClassifier, got {type(model).__name__}")
    reserved = {"format": FORMAT_NAME, "arch": model.arch, "channels": str(model.channels),
                "resolution": str(model.resolution), "num_classes": str(model.num_classes)}
    metadata: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise ValueError(f"metadata keys must be strings, got {key!r}")
        value = str(value)
        if key in reserved and value != reserved[key]:
            raise ValueError(f"metadata key {key!r} is reserved (must be {reserved[key]!r})")
        metadata[key] = value
    metadata.update(reserved)
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()
    }
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _model_for(path: Path, meta: dict[str, str]) -> ImageClassifier:
    """The (untrained) classifier the metadata of ``path`` describes."""
    arch = meta.get("arch")
    if arch == ARCH_NAME:
        return MnistClassifier()
    if arch != IMAGE_ARCH_NAME:
        raise ValueError(f"{path}: unsupported classifier architecture {arch!r} "
                         f"(expected {ARCH_NAME!r} or {IMAGE_ARCH_NAME!r})")
    try:
        c, r, k = (int(meta[key]) for key in _SHAPE_KEYS)
        return ImageClassifier(c, k, r)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: metadata does not give a valid {IMAGE_ARCH_NAME} shape "
                         f"({exc})") from None


def load_classifier(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[ImageClassifier, dict[str, str]]:
    """Load a classifier saved by :func:`save_classifier` (safetensors: no code is executed).

    Args:
        path: the safetensors file.
        map_location: device to put the model on.

    Returns:
        ``(model, meta)``: the model in eval mode and the stored metadata (``dict[str, str]``).

    Raises:
        ValueError: naming the file, if it is missing, unreadable, corrupt, or does not hold a
            gan-accel classifier of a known architecture.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"classifier file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc

    if meta.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{path}: not a gan-accel classifier (metadata format="
            f"{meta.get('format')!r}, expected {FORMAT_NAME!r})"
        )
    model = _model_for(path, meta)
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        raise ValueError(
            f"{path}: tensor names do not match {model.arch} (missing {missing}, "
            f"unexpected {extra})"
        )
    for name, ref in expected.items():
        t = tensors[name]
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise ValueError(
                f"{path}: tensor {name!r} has shape {tuple(t.shape)} dtype {t.dtype}, "
                f"expected {tuple(ref.shape)} {ref.dtype}"
            )
        if not torch.isfinite(t).all():
            raise ValueError(f"{path}: tensor {name!r} contains non-finite values")
    model.load_state_dict(tensors, strict=True)
    return model.to(map_location).eval(), meta


def class_names_of(meta: Mapping[str, str], num_classes: int) -> tuple[str, ...]:
    """The class names stored in a classifier's metadata (``class_names``: a JSON list), or
    ``"0" .. "K-1"`` when the file names none."""
    try:
        names = json.loads(meta.get("class_names", "null"))
    except json.JSONDecodeError:
        names = None
    if isinstance(names, list) and len(names) == num_classes:
        return tuple(str(n) for n in names)
    return tuple(str(i) for i in range(num_classes))
