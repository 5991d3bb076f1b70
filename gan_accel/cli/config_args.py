"""The training command line, built from :class:`~gan_accel.config.TrainConfig`: one
``--flag`` per field with its help text, defaulting to the chosen variant's recipe."""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..config import TrainConfig, field_type
from ..errors import OneLineParser, UserError
from ..variants import VARIANTS, recipe_config


def add_config_arguments(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    """Add one ``--flag`` per TrainConfig field, with ``help=`` and the recipe's default."""
    for f in fields(TrainConfig):
        kind = field_type(f)
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        helptext = f"{f.metadata['help']} (default: {default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=helptext)
        else:
            parser.add_argument(flag, type=kind, default=default, help=helptext,
                                choices=f.metadata.get("choices"),
                                metavar=f.name.upper() if not f.metadata.get("choices") else None)


def config_from_args(argv, prog: str, description: str, extra=None):
    """Parse ``argv`` into (TrainConfig, namespace): ``--model`` and ``--recipe`` pick the
    defaults first, every other flag overrides them."""
    pre = OneLineParser(add_help=False)
    pre.add_argument("--model", default="dcgan")
    pre.add_argument("--recipe", default="tuned")
    known, _ = pre.parse_known_args(argv)
    if known.model not in VARIANTS:
        raise UserError(f"unknown model {known.model!r}; choose one of {', '.join(VARIANTS)}")
    defaults = recipe_config(known.model, known.recipe)
    parser = OneLineParser(prog=prog, description=description)
    add_config_arguments(parser, defaults)
    if extra:
        extra(parser)
    ns = parser.parse_args(argv)
    values = {f.name: getattr(ns, f.name) for f in fields(TrainConfig)}
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg, ns
