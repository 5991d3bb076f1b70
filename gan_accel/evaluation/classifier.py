"""RealFeatures MNIST-like classifier whose feature space is used for GAN quality metrics.

Inception-based FID is meaningless for 28x28 single-channel digits (and its weights cannot
be downloaded here), so gan-accel measures sample quality in the 128-d penultimate feature
space of the small CNN defined in this module. The project trains it once and ships the
weights as a safetensors file; :func:`load_classifier` reads it back without executing code.

Architecture (``ARCH_NAME``), input ``[B, 1, 28, 28]`` float in ``[0, 1]``::

    conv3x3(1->32)+ReLU -> maxpool2 (14x14)
    conv3x3(32->64)+ReLU -> maxpool2 (7x7)
    conv3x3(64->128)+ReLU -> adaptive avgpool (3x3)
    fc(1152->128)+ReLU            <- features(x): [B, 128]
    dropout(0.25) -> fc(128->10)  <- logits

241,546 parameters, about 7.5 M multiply-adds per image (pooling early keeps it CPU friendly).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ARCH_NAME",
    "FORMAT_NAME",
    "FEATURE_DIM",
    "NUM_CLASSES",
    "MnistClassifier",
    "train_classifier",
    "accuracy",
    "save_classifier",
    "load_classifier",
    "u8_to_unit",
]

ARCH_NAME = "mnist-cnn-v1"
FORMAT_NAME = "gan-accel-classifier"
FEATURE_DIM = 128
NUM_CLASSES = 10
IMAGE_SIZE = 28
_MAX_SHIFT = 2  # pixels, for training-time augmentation
_RESERVED_META = {"format": FORMAT_NAME, "arch": ARCH_NAME}


class MnistClassifier(nn.Module):
    """Small CNN for 28x28 single-channel images in ``[0, 1]`` (see module docstring).

    ``forward(x)`` returns ``[B, 10]`` logits, ``features(x)`` the ``[B, 128]`` penultimate
    (post-ReLU) features used by the metrics, and ``features_and_logits(x)`` both at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.pool_out = nn.AdaptiveAvgPool2d(3)
        self.fc1 = nn.Linear(128 * 3 * 3, FEATURE_DIM)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features.

        Args:
            x: ``[B, 1, 28, 28]`` float tensor with values in ``[0, 1]``.

        Returns:
            ``[B, 128]`` non-negative feature tensor.
        """
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.pool_out(F.relu(self.conv3(x)))
        return F.relu(self.fc1(torch.flatten(x, 1)))

    def logits_from_features(self, feats: Tensor) -> Tensor:
        """Map ``[B, 128]`` features to ``[B, 10]`` logits (dropout is active in train mode)."""
        return self.fc2(self.dropout(feats))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(features [B, 128], logits [B, 10])`` in a single pass."""
        feats = self.features(x)
        return feats, self.logits_from_features(feats)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``[B, 10]`` class logits for ``[B, 1, 28, 28]`` inputs in ``[0, 1]``."""
        return self.logits_from_features(self.features(x))


# --------------------------------------------------------------------------- input helpers


def u8_to_unit(images_u8: Tensor) -> Tensor:
    """Convert ``[N, 28, 28]`` or ``[N, 1, 28, 28]`` uint8 images to ``[N, 1, 28, 28]`` floats."""
    if images_u8.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got dtype {images_u8.dtype}")
    return _as_nchw(images_u8).float().div_(255.0)


def _as_nchw(images: Tensor) -> Tensor:
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"expected images of shape [N, 28, 28] or [N, 1, 28, 28], got {tuple(images.shape)}"
        )
    return images


def _check_labels(labels: Tensor, n: int) -> Tensor:
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape [{n}], got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    labels = labels.long()
    if n and (int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES):
        raise ValueError(
            f"labels must lie in [0, {NUM_CLASSES}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def _random_shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Shift each ``[B, 1, H, W]`` image by an integer offset in ``[-max_shift, max_shift]``."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, :, None]  # [B, H, 1]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, :]  # [B, 1, W]
    return padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


# --------------------------------------------------------------------------- training


def train_classifier(
    images_u8: Tensor,
    labels: Tensor,
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    augment: bool = True,
    log: Callable[[str], Any] | None = None,
) -> MnistClassifier:
    """Train a :class:`MnistClassifier` on CPU, deterministically for a given seed.

    Adam with a cosine learning-rate decay to zero over all steps, cross-entropy loss,
    optional random integer shifts of up to 2 pixels. The global torch RNG state is saved
    and restored, so calling this has no side effect on other random streams.

    Args:
        images_u8: ``[N, 28, 28]`` (or ``[N, 1, 28, 28]``) uint8 images.
        labels: ``[N]`` integer labels in ``[0, 10)``.
        epochs: passes over the data; ``0`` returns the seeded initial model untrained.
        batch_size: minibatch size (the last partial batch is kept).
        lr: peak Adam learning rate.
        seed: seeds initialisation, shuffling, augmentation and dropout.
        augment: apply random shifts of up to 2 pixels.
        log: optional callable receiving one progress line per epoch, e.g. ``print``.

    Returns:
        the trained model in eval mode, on CPU.
    """
    x_all = u8_to_unit(images_u8)
    n = x_all.shape[0]
    y_all = _check_labels(labels, n)
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MnistClassifier()
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
                    xb = _random_shift(xb, _MAX_SHIFT, gen)
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
def accuracy(model: nn.Module, images_u8: Tensor, labels: Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on uint8 images.

    Args:
        model: a classifier taking ``[B, 1, 28, 28]`` inputs in ``[0, 1]`` and returning logits.
        images_u8: ``[N, 28, 28]`` (or ``[N, 1, 28, 28]``) uint8 images.
        labels: ``[N]`` integer labels.
        batch_size: evaluation batch size.

    Returns:
        fraction of correctly classified images (the model's train/eval mode is restored).
    """
    x_all = u8_to_unit(images_u8)
    y_all = _check_labels(labels, x_all.shape[0])
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
    model: MnistClassifier, path: str | os.PathLike, meta: Mapping[str, Any]
) -> None:
    """Save weights and metadata to a safetensors file (written atomically).

    Args:
        model: the classifier to save (any device; stored as CPU float32).
        path: destination file.
        meta: free-form metadata, e.g. dataset name, held-out accuracy, training command.
            Keys must be strings; values are stored with ``str()``. The keys ``format`` and
            ``arch`` are reserved and filled in automatically.
    """
    from safetensors.torch import save_file

    if not isinstance(model, MnistClassifier):
        raise TypeError(f"expected a MnistClassifier, got {type(model).__name__}")
    metadata: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise ValueError(f"metadata keys must be strings, got {key!r}")
        value = str(value)
        if key in _RESERVED_META and value != _RESERVED_META[key]:
            raise ValueError(f"metadata key {key!r} is reserved (must be {_RESERVED_META[key]!r})")
        metadata[key] = value
    metadata.update(_RESERVED_META)
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


def load_classifier(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[MnistClassifier, dict[str, str]]:
    """Load a classifier saved by :func:`save_classifier` (safetensors: no code is executed).

    Args:
        path: the safetensors file.
        map_location: device to put the model on.

    Returns:
        ``(model, meta)``: the model in eval mode and the stored metadata (``dict[str, str]``).

    Raises:
        ValueError: naming the file, if it is missing, unreadable, corrupt, or does not hold a
            gan-accel classifier of the expected architecture.
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
    if meta.get("arch") != ARCH_NAME:
        raise ValueError(
            f"{path}: unsupported classifier architecture {meta.get('arch')!r} "
            f"(expected {ARCH_NAME!r})"
        )
    model = MnistClassifier()
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        raise ValueError(
            f"{path}: tensor names do not match {ARCH_NAME} (missing {missing}, unexpected {extra})"
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
