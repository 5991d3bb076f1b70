"""The differentiable-augmentation policy a run asks for (``--augment``): the closed set of
transforms and the parser of the flag. Torch-free, so the config can validate the flag;
:mod:`gan_accel.variants.augment` implements the transforms."""

from __future__ import annotations

import enum


class Transform(enum.Enum):
    TRANSLATION = "translation"  # shift by up to 1/8 of the side, background fills in
    CUTOUT = "cutout"  # a square of half the side set to the background
    COLOR = "color"  # brightness +-1/4 of the range width, contrast x[0.5, 1.5]
    AFFINE = "affine"  # rotation by up to +-15 degrees, scale x[0.9, 1.1], about the centre


def parse_policy(text: str) -> tuple[Transform, ...]:
    """``"translation,cutout"`` -> the transforms in their fixed order; ``"none"`` -> ().

    Raises:
        ValueError: naming an unknown transform and the known ones.
    """
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["none"]:
        return ()
    known = {t.value: t for t in Transform}
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ValueError(f"unknown augmentation {bad[0] if bad else text!r}; use none or a "
                         f"comma-separated list of {', '.join(known)}")
    return tuple(t for t in Transform if t.value in names)
