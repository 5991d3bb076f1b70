"""The generator's inputs: one owner for the latent layout, shared by training, export and serving.

A generator takes ``z`` (noise), optionally ``label`` (a cGAN's class, int64 ``[B]``) and
optionally ``codes`` (InfoGAN: one-hot categorical ``cat_dim`` ++ continuous U(-1, 1)
``cont_dim``, float32). This module imports neither torch nor numpy at import time, so the
torch-free ONNX runtime uses the same layout and the same distributions: :meth:`sample` draws
with torch (training, checkpoints), :meth:`sample_numpy` with numpy (the runtime).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class ZDist(str, enum.Enum):
    NORMAL = "normal"  # N(0, 1)
    UNIFORM = "uniform"  # U(-1, 1)


LATENT_FIELDS = ("z_dim", "z_dist", "num_classes", "cat_dim", "cont_dim")


@dataclass(frozen=True)
class LatentSpec:
    """Widths and distributions of a generator's inputs."""

    z_dim: int
    z_dist: str = ZDist.NORMAL.value
    num_classes: int = 0  # > 0: G takes a ``label`` input
    cat_dim: int = 0
    cont_dim: int = 0

    def __post_init__(self):
        if self.z_dim < 1 or min(self.num_classes, self.cat_dim, self.cont_dim) < 0:
            raise ValueError(f"bad latent sizes: {self}")
        ZDist(self.z_dist)  # ValueError for an unknown distribution

    # -- layout -----------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        names = ["z"]
        if self.num_classes:
            names.append("label")
        if self.code_dim:
            names.append("codes")
        return names

    @property
    def code_dim(self) -> int:
        return self.cat_dim + self.cont_dim

    @property
    def num_labels(self) -> int:
        """How many classes a class index selects: cGAN labels, else InfoGAN's codes."""
        return self.num_classes or self.cat_dim

    def check_class(self, label, what: str = "label") -> None:
        """The one class-range check (CLI flags, the runtime, the server): ValueError unless
        ``label`` (an int or an array of ints) names classes this generator has, 0 ..
        :attr:`num_labels` - 1 (cGAN classes, or InfoGAN's categorical codes). ``what`` names
        the input in the message (``--label``, ``label``)."""
        if not self.num_labels:
            raise ValueError(f"{what} needs a conditional model (cgan, infogan); this one has "
                             "no labels")
        if isinstance(label, int):  # the common case, without numpy
            bad = None if 0 <= label < self.num_labels else label
        else:
            import numpy as np

            values = np.asarray(label).reshape(-1)
            wrong = values[(values < 0) | (values >= self.num_labels)]
            bad = int(wrong[0]) if wrong.size else None
        if bad is not None:
            raise ValueError(f"{what} {bad} is out of range 0..{self.num_labels - 1}")

    def class_kwargs(self, classes) -> dict:
        """The :meth:`sample` keyword that fixes each sample's class (``label`` or ``cat``)."""
        if classes is None:
            return {}
        if not self.num_labels:
            raise ValueError("this generator is unconditional: it has no classes to fix")
        return {"label": classes} if self.num_classes else {"cat": classes}

    def to_meta(self) -> dict:
        return {**asdict(self), "input_names": self.input_names}

    @classmethod
    def from_meta(cls, meta: dict) -> LatentSpec:
        return cls(**{k: meta[k] for k in LATENT_FIELDS if k in meta})

    # -- torch ------------------------------------------------------------------------------
    def sample_z(self, n: int, device, generator=None):
        import torch

        if self.z_dist == ZDist.UNIFORM:
            return torch.rand(n, self.z_dim, device=device, generator=generator) * 2 - 1
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def sample(self, n: int, device, generator=None, label=None, cat=None, cont=None) -> dict:
        """``n`` latent inputs as torch tensors; ``label``/``cat``/``cont`` fix those parts."""
        import torch
        import torch.nn.functional as F

        out = {"z": self.sample_z(n, device, generator)}
        if self.num_classes:
            if label is None:
                label = torch.randint(0, self.num_classes, (n,), device=device,
                                      generator=generator)
            out["label"] = label.to(device)
        if self.code_dim:
            parts = []
            if self.cat_dim:
                if cat is None:
                    cat = torch.randint(0, self.cat_dim, (n,), device=device,
                                        generator=generator)
                parts.append(F.one_hot(cat.to(device), self.cat_dim).float())
            if self.cont_dim:
                if cont is None:
                    cont = torch.rand(n, self.cont_dim, device=device, generator=generator) * 2 - 1
                parts.append(cont.to(device))
            out["codes"] = torch.cat(parts, dim=1)
        return out

    # -- numpy ------------------------------------------------------------------------------
    def sample_numpy(self, n: int, rng, label=None) -> dict:
        """``n`` latent inputs as numpy arrays from ``rng`` (a ``numpy.random.Generator``).

        ``label`` ([n] int64 or None) fixes the cGAN class or InfoGAN's categorical code.
        """
        import numpy as np

        if self.z_dist == ZDist.UNIFORM:
            z = rng.uniform(-1.0, 1.0, (n, self.z_dim)).astype(np.float32)
        else:
            z = rng.standard_normal((n, self.z_dim), dtype=np.float32)
        feeds = {"z": z}
        if self.num_classes:
            feeds["label"] = (label if label is not None
                              else rng.integers(0, self.num_classes, n, dtype=np.int64))
        if self.code_dim:
            parts = []
            if self.cat_dim:
                cat = label if label is not None else rng.integers(0, self.cat_dim, n)
                parts.append(np.eye(self.cat_dim, dtype=np.float32)[cat])
            if self.cont_dim:
                parts.append(rng.uniform(-1.0, 1.0, (n, self.cont_dim)).astype(np.float32))
            feeds["codes"] = np.concatenate(parts, axis=1)
        return feeds
