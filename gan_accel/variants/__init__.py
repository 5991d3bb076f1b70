"""The GAN family. Each module here defines ``VARIANT``, a :class:`Variant` subclass.

Adding a variant means adding one module with its class and preset: :data:`VARIANTS` is
built by scanning this package, nothing else needs to change.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import UserError
from ..latent import LatentSpec
from .base import Batch, Phase, Variant


def _discover() -> dict[str, type[Variant]]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        cls = getattr(importlib.import_module(f"{__name__}.{info.name}"), "VARIANT", None)
        if cls is not None:
            found[cls.name] = cls
    return found


VARIANTS: dict[str, type[Variant]] = _discover()


def get_variant(name: str) -> type[Variant]:
    """The Variant class called ``name``; a UserError listing the choices otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(VARIANTS)}") from None


def build_variant(cfg, ops=None) -> Variant:
    """Instantiate ``cfg.model`` with the given ops (default: plain PyTorch)."""
    from ..ops import TORCH_OPS

    return get_variant(cfg.model)(cfg, ops or TORCH_OPS)


__all__ = ["VARIANTS", "Batch", "LatentSpec", "Phase", "Variant", "build_variant",
           "get_variant"]
