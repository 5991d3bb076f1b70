"""The GAN family. Each module here defines ``VARIANT``, a :class:`Variant` subclass.

Adding a variant means adding one module with its class and recipes: :data:`VARIANTS` is
built by scanning this package, nothing else needs to change. :func:`recipe_config` turns a
variant's recipe into a :class:`~gan_accel.config.TrainConfig`.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..config import Recipe, TrainConfig
from ..errors import UserError
from ..latent import LatentSpec
from ..models.arch import Arch
from ..ops import TORCH_OPS
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


def recipe_config(model: str, recipe: str = "tuned", **overrides) -> TrainConfig:
    """``model``'s tuned recipe (with its own epochs), or with ``recipe="paper"`` its paper's
    or seed's hyperparameters; ``overrides`` replace any field. Validated.

    Raises:
        UserError: for an unknown model or recipe, or a paper recipe the variant lacks.
    """
    try:
        recipe = Recipe(recipe)
    except ValueError:
        raise UserError(f"--recipe {recipe!r} is not one of "
                        f"{', '.join(r.value for r in Recipe)}") from None
    variant = get_variant(model)
    if recipe is Recipe.PAPER and not variant.paper_recipe:
        raise UserError(f"{model} states no paper recipe; use --recipe tuned")
    chosen = variant.tuned_recipe if recipe is Recipe.TUNED else variant.paper_recipe
    values = {"model": model, "recipe": recipe.value, "out": f"runs/{model}", **chosen,
              **overrides}
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


def resolve_arch(variant_name: str, resolution: int, arch: str = "auto") -> Arch:
    """The architecture ``--arch arch`` means for ``variant_name`` at ``resolution`` px
    (``auto``: the seed's tiny nets at 28, the variant's paper architecture at 32 and 64).

    Raises:
        UserError: for a pair that does not make sense (docs/architectures.md).
    """
    return get_variant(variant_name).choose_arch(resolution, arch)


def resolve_networks(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its nets concrete (arch, widths, latent width, classes); see
    :meth:`Variant.resolved`. The data's shape must be resolved first (0 means the
    MNIST-like 1 x 28 x 28)."""
    return get_variant(cfg.model).resolved(cfg)


def build_variant(cfg: TrainConfig, ops=None) -> Variant:
    """Instantiate ``cfg.model`` with the given ops (default: plain PyTorch); ``variant.cfg``
    is ``cfg`` resolved (:func:`resolve_networks`)."""
    return get_variant(cfg.model)(cfg, ops or TORCH_OPS)


__all__ = ["VARIANTS", "Batch", "LatentSpec", "Phase", "Variant", "build_variant",
           "get_variant", "recipe_config", "resolve_arch", "resolve_networks"]
