"""Rebuild a trained variant from a checkpoint (for sampling, export and evaluation)."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import TrainConfig
from .errors import CheckpointError
from .variants import Variant, build_variant


def load_trained(path: str | Path, which: str = "last", ema: bool = False,
                 device: str | torch.device = "cpu") -> tuple[Variant, dict]:
    """Load ``(variant, meta)`` from a run dir or checkpoint file, in eval mode.

    ``ema=True`` puts the EMA generator's weights into ``variant.G`` (error if the run kept
    none). Raises CheckpointError for a missing, corrupt or generator-less checkpoint.
    """
    json_path = resolve_checkpoint(path, which)
    meta, tensors = load_checkpoint(json_path)
    cfg = TrainConfig.from_dict(meta["config"])
    variant = build_variant(cfg)
    g_state = {k[len("model.G."):]: v for k, v in tensors.items() if k.startswith("model.G.")}
    if not g_state:
        raise CheckpointError(f"{json_path} holds no generator weights (a discriminator-only "
                              "checkpoint?); pass a checkpoint written by gan_accel.train")
    if ema:
        ema_state = {k[len("ema.module."):]: v for k, v in tensors.items()
                     if k.startswith("ema.module.")}
        if not ema_state:
            raise CheckpointError(f"{json_path} has no EMA generator; train with --ema 0.999 "
                                  "or drop --ema")
        g_state = ema_state
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model_state.update({f"G.{k}": v for k, v in g_state.items()})
    try:
        variant.load_state_dict(model_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{json_path} does not match a {cfg.model} model "
                              f"({str(exc).splitlines()[0]})") from None
    meta["checkpoint"] = str(json_path)
    return variant.to(device).eval(), meta
