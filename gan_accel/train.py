"""``python -m gan_accel.train``: train any variant, eager or compiled, and resume exactly.

This entry point is the composition root: it picks the spectral-norm / gradient-penalty
implementation (``--kernels``) and loads the ``kernels`` package only when asked to.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import torch

from .checkpoint import list_checkpoints, load_latest_good, read_meta, resolve_checkpoint
from .config import TrainConfig, config_from_args
from .errors import CheckpointError, UserError, run_cli
from .ops import TORCH_OPS, Ops

# flags that may change when a run is resumed; everything else comes from the checkpoint
RESUMABLE = {"epochs", "max_steps", "progress", "log_every", "checkpoint_every", "keep_last",
             "compile", "compile_mode", "device", "kernels", "on_nan", "eval_every",
             "eval_samples"}


def build_ops(choice: str, device: torch.device, log=print) -> Ops:
    """The Ops for ``--kernels``: PyTorch's own, or the fused Triton kernels."""
    if choice == "torch":
        return TORCH_OPS
    if choice == "auto" and device.type != "cuda":
        log(f"kernels: auto -> PyTorch reference ops on {device.type} "
            "(the fused Triton kernels run on CUDA; --kernels triton forces them)")
        return TORCH_OPS
    import kernels

    return Ops(name=choice,
               spectral_norm=partial(kernels.spectral_norm, impl=choice),
               gp_norm_penalty=partial(kernels.gp_norm_penalty, impl=choice))


def init_distributed(cfg: TrainConfig) -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    import os

    import torch.distributed as dist

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


def _explicit_flags(argv: list[str]) -> set[str]:
    names = set()
    for arg in argv:
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0]
            name = name[3:] if name.startswith("no-") else name
            names.add(name.replace("-", "_"))
    return names


def _resume_config(resume: str, cfg: TrainConfig, argv: list[str]) -> tuple[TrainConfig, Path]:
    """The checkpoint's config with the resumable flags given on the command line applied."""
    path = Path(resume)
    if not path.exists():
        raise CheckpointError(f"--resume {resume} does not exist; pass a run directory")
    if path.is_dir():
        json_path, meta, _ = load_latest_good(path)
    else:
        json_path = resolve_checkpoint(path)
        meta = read_meta(json_path)
    saved = TrainConfig.from_dict(meta["config"])
    explicit = _explicit_flags(argv) - {"resume"}
    if "model" in explicit and cfg.model != saved.model:
        raise CheckpointError(f"{json_path} holds a {saved.model} run, not {cfg.model}; "
                              f"drop --model or pass --model {saved.model}")
    fixed = sorted(n for n in explicit - RESUMABLE - {"model", "out"}
                   if getattr(cfg, n) != getattr(saved, n))
    if fixed:
        raise UserError(f"--{fixed[0].replace('_', '-')} cannot change on --resume (the run "
                        f"was trained with {getattr(saved, fixed[0])!r}); drop it")
    for name in explicit & RESUMABLE:
        setattr(saved, name, getattr(cfg, name))
    run_dir = json_path.parent.parent
    saved.out = str(run_dir)
    saved.validate()
    return saved, json_path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def extra(parser):
        parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                            help="continue a run from its newest good checkpoint (or from the "
                                 "checkpoint .json given)")

    cfg, ns = config_from_args(argv, "gan_accel.train",
                               "Train a GAN variant on MNIST-like data.", extra)
    resume_from = None
    if ns.resume:
        cfg, resume_from = _resume_config(ns.resume, cfg, argv)
    elif list_checkpoints(Path(cfg.out)):
        raise UserError(f"{cfg.out} already holds a run; pass --resume {cfg.out} to continue "
                        "it or choose another --out")
    from .trainer import Trainer, select_device

    init_distributed(cfg)
    device = select_device(cfg.device)
    ops = build_ops(cfg.kernels, device)
    evaluator = None
    if cfg.eval_every:
        from .evaluation import TrainingEvaluator

        evaluator = TrainingEvaluator(cfg)
    trainer = Trainer(cfg, ops=ops, resume_from=resume_from, evaluator=evaluator)
    try:
        summary = trainer.fit()
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if trainer.rank != 0:
        return 0
    first = ", ".join(f"{k} {v:.1f} s" for k, v in summary["first_call_seconds"].items())
    label = "compile + first step" if cfg.compile else "first step"
    print(f"done: {summary['steps']} steps | {label}: {first} | "
          f"checkpoints in {Path(cfg.out) / 'checkpoints'} | samples {cfg.out}/samples.png | "
          f"loss curve {cfg.out}/loss.png")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
