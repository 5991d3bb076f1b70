"""The evaluation classifier of a labelled dataset that ships none (a folder, emoji).

The project's own :class:`~.classifier.ImageClassifier`, trained on the data's training
split and scored on its held-out split (a stratified, seeded 20% of every class), exactly as
the shipped MNIST and Fashion-MNIST classifiers were; trained once and cached as
``<cache_dir>/classifier-<digest>.safetensors``, where ``cache_dir`` is the folder of the
dataset's decoded cache and ``digest`` that cache's content digest (``ImageSet.digest``: the
source files and the decoding parameters; for a set made in memory, the SHA-256 of its
images, labels and class names). A changed folder decodes to a new digest, hence a new
classifier; the stale one is deleted when the new one is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..data import ImageSet
from ..errors import UserError
from .classifier import (
    ImageClassifier,
    accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
)

__all__ = ["HELDOUT_FRACTION", "content_digest", "data_digest", "stratified_split",
           "classifier_file", "default_epochs", "train_data_classifier", "load_data_classifier",
           "class_names", "background", "is_labelled"]

HELDOUT_FRACTION = 0.2  # of every class, never seen by the classifier
SPLIT_SEED = 0
TARGET_STEPS = 1500  # optimizer steps at batch 64 the default epochs aim at ...
MIN_EPOCHS, MAX_EPOCHS = 5, 30  # ... within these bounds
BATCH_SIZE = 64
LR = 2e-3
_DIGEST_CHUNK = 4096  # images hashed per read (a memory-mapped set is read in chunks)


def class_names(data: ImageSet) -> tuple[str, ...]:
    """The data's class names (``"0"`` .. for a set that names none)."""
    names = tuple(getattr(data, "class_names", ()) or ())
    if len(names) == data.num_classes:
        return names
    return tuple(str(i) for i in range(data.num_classes))


def background(data: ImageSet) -> float | tuple[float, ...]:
    """The pixel value in [0, 1] that fills shifted-in pixels (the data's background)."""
    value = getattr(data, "background", 0.0)
    return tuple(float(v) for v in value) if isinstance(value, list | tuple) else float(value)


def is_labelled(data: ImageSet) -> bool:
    """Two or more classes: a classifier can be trained and class coverage measured."""
    return data.num_classes >= 2


def content_digest(data: ImageSet) -> str:
    """SHA-256 (16 hex digits) of the images (shape and bytes), labels and class names."""
    h = hashlib.sha256()
    h.update(json.dumps({"shape": list(data.images.shape), "classes": class_names(data)})
             .encode())
    for i in range(0, len(data), _DIGEST_CHUNK):
        h.update(data.images[i: i + _DIGEST_CHUNK].contiguous().numpy().tobytes())
    h.update(data.labels.to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def data_digest(data: ImageSet) -> str:
    """The key of ``data``'s classifier: its cache's digest, else :func:`content_digest`."""
    cached = getattr(data, "digest", "")  # set by the decoded cache of a folder or emoji
    return cached[:16] if cached else content_digest(data)


def stratified_split(data: ImageSet, fraction: float = HELDOUT_FRACTION,
                     seed: int = SPLIT_SEED) -> tuple[ImageSet, ImageSet]:
    """``(train, held_out)``: ``round(fraction * n_c)`` random images of every class ``c``
    held out (classes of one image stay in train), seeded; order kept within each part."""
    gen = torch.Generator().manual_seed(seed)
    held = []
    for c in range(data.num_classes):
        idx = (data.labels == c).nonzero().flatten()
        k = round(fraction * len(idx)) if len(idx) > 1 else 0
        held.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    held_idx = torch.cat(held).sort().values
    mask = torch.ones(len(data), dtype=torch.bool)
    mask[held_idx] = False
    rest_idx = mask.nonzero().flatten()
    return _subset(data, rest_idx, "training split"), _subset(data, held_idx, "held-out split")


def _subset(data: ImageSet, idx: torch.Tensor, what: str) -> ImageSet:
    import dataclasses

    return dataclasses.replace(data, images=data.images[idx], labels=data.labels[idx],
                               source=f"{data.source}, {what} ({len(idx)} images)")


def classifier_file(cache_dir: str | Path, digest: str) -> Path:
    return Path(cache_dir) / f"classifier-{digest}.safetensors"


def default_epochs(n_train: int, batch_size: int = BATCH_SIZE) -> int:
    """About ``TARGET_STEPS`` steps, within ``[MIN_EPOCHS, MAX_EPOCHS]``."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(TARGET_STEPS / per_epoch))))


def train_data_classifier(data: ImageSet, cache_dir: str | Path, *, epochs: int = 0,
                          batch_size: int = 0, lr: float = 0.0, seed: int = 0,
                          augment: bool = True, command: str = "",
                          log: Callable[[str], Any] = print) -> tuple[ImageClassifier, dict]:
    """Train ``data``'s evaluation classifier and cache it in ``cache_dir``.

    Args:
        data: a labelled set (two or more classes).
        cache_dir: the folder of the dataset's cache (must exist).
        epochs: passes over the training split (0: :func:`default_epochs`).
        batch_size, lr: minibatch and peak Adam learning rate (0: ``BATCH_SIZE``, ``LR``).
        seed: training seed (the split is always seed 0).
        augment: random shifts (filled with the data's background).
        command: the command line recorded in the file's metadata.
        log: receives the line saying what was trained, in how long, and where it went.

    Returns:
        ``(model, metadata)``; the metadata holds ``heldout_accuracy`` and ``path``.
    """
    if not is_labelled(data):
        raise UserError(f"{data.name} has no labels (class subfolders), so it has no "
                        "evaluation classifier; it is measured in the random-cnn feature space")
    digest = data_digest(data)
    out = classifier_file(cache_dir, digest)
    train, held = stratified_split(data)
    if len(held) == 0:
        raise UserError(f"{data.name}: too few images per class to hold any out for the "
                        "evaluation classifier; add images or measure with --feature-space "
                        "random-cnn")
    batch_size, lr = batch_size or BATCH_SIZE, lr or LR
    epochs = epochs or default_epochs(len(train), batch_size)
    c, r = int(data.images.shape[1]), int(data.images.shape[-1])
    t0 = time.perf_counter()
    model = train_classifier(train.images, train.labels, num_classes=data.num_classes,
                             epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             augment=augment, fill=background(data))
    seconds = time.perf_counter() - t0
    acc = accuracy(model, held.images, held.labels)
    names = class_names(data)
    meta = {
        "dataset": data.name,
        "digest": digest,
        "class_names": json.dumps(list(names)),
        "heldout_accuracy": f"{acc:.4f}",
        "heldout": f"a stratified {HELDOUT_FRACTION:.0%} of every class, split seed "
                   f"{SPLIT_SEED} ({len(held)} images)",
        "heldout_n": len(held),
        "train": f"the other {len(train)} images of {data.source}",
        "train_n": len(train),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "augment": f"random shifts of up to {max(2, r // 16)} pixels" if augment else "none",
        "train_seconds": f"{seconds:.0f}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "command": command or "trained automatically on the first evaluation",
    }
    try:
        save_classifier(model, out, meta)
    except OSError as exc:
        raise UserError(f"cannot write the evaluation classifier to {out} ({exc.strerror}); "
                        "make the dataset cache folder writable") from None
    for stale in Path(cache_dir).glob("classifier-*.safetensors"):
        if stale != out:  # the classifier of this cache's earlier contents
            stale.unlink(missing_ok=True)
    log(f"evaluation classifier for {data.name} ({c}x{r}x{r}, {data.num_classes} classes): "
        f"trained on {len(train)} images in {seconds:.0f} s ({epochs} epochs), held-out "
        f"accuracy {acc:.1%} on {len(held)}; cached at {out}")
    return model, {**meta, "path": str(out)}


def load_data_classifier(data: ImageSet, cache_dir: str | Path, *,
                         device: str | torch.device = "cpu",
                         log: Callable[[str], Any] = print) -> tuple[ImageClassifier, dict]:
    """``data``'s cached evaluation classifier, trained first if the cache has none.

    Returns:
        ``(model in eval mode on device, metadata)``.
    """
    digest = data_digest(data)
    path = classifier_file(cache_dir, digest)
    if path.is_file():
        try:
            with torch.random.fork_rng(devices=[]):
                model, meta = load_classifier(path, map_location=device)
        except ValueError as exc:
            raise UserError(f"{exc}; delete {path} and it is retrained on the next "
                            "evaluation") from None
        if meta.get("digest") != digest or model.num_classes != data.num_classes:
            raise UserError(f"{path} does not belong to this data (digest "
                            f"{meta.get('digest')!r}, expected {digest!r}); delete it")
        return model, {**meta, "path": str(path)}
    log(f"no evaluation classifier for {data.name} yet: training one on its training split "
        "(once; it is cached beside the dataset cache)")
    model, meta = train_data_classifier(data, cache_dir, log=log)
    return model.to(device), meta
