"""The one place a ``--device`` string becomes a torch device."""

from __future__ import annotations

import torch

from .errors import UserError


def select_device(name: str, flag: str = "--device") -> torch.device:
    """``auto`` -> cuda when available, else cpu; UserError for an unusable choice."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{flag} {name!r} is not a device; use cpu, cuda, cuda:N or auto") \
            from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{flag} {name} asked for but no CUDA device is available; use "
                            "cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{flag} {name}: this machine has {torch.cuda.device_count()} "
                            "CUDA device(s); pick one of them")
    elif device.type != "cpu":
        raise UserError(f"{flag} {name!r} is not supported; use cpu, cuda, cuda:N or auto")
    return device
