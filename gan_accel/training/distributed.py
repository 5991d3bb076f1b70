"""Joining a torchrun process group, and this process's place in it."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(cfg) -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        cfg.device = f"cuda:{local}"
    elif cfg.device == "auto":
        cfg.device = "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")


def dist_info() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
