"""``python -m gan_accel.train``: train any variant, eager or compiled, and resume exactly."""

from __future__ import annotations

import sys
from pathlib import Path

from ..checkpoints import (
    check_resumable,
    list_checkpoints,
    load_checkpoint,
    load_latest_good,
    resolve_checkpoint,
)
from ..config import TrainConfig
from ..errors import CheckpointError, DiskFullError, UserError, run_cli
from .config_args import config_from_args

# flags that may change when a run is resumed; everything else comes from the checkpoint
RESUMABLE = {"epochs", "max_steps", "progress", "log_every", "checkpoint_every", "keep_last",
             "compile", "compile_mode", "device", "kernels", "on_nan", "eval_every",
             "eval_samples"}


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
        json_path, meta, tensors = load_latest_good(path)
    else:
        json_path = resolve_checkpoint(path)
        meta, tensors = load_checkpoint(json_path)
    check_resumable(json_path, meta, tensors)
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


def _resume_hint(run_dir: Path) -> str:
    """After a full disk: the checkpoint a resume starts from, and the command."""
    found = list_checkpoints(run_dir)
    if not found:
        return "no checkpoint was written yet; free disk space and run the command again"
    return (f"the last good checkpoint {found[-1]} is intact; free disk space, then continue "
            f"with --resume {run_dir}")


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
    from ..devices import select_device
    from ..ops import check_kernels
    from ..training.distributed import init_distributed
    from ..training.trainer import Trainer, check_amp

    device = select_device(cfg.device)  # every flag this machine cannot honour fails here,
    check_kernels(cfg.kernels, device)  # before any data is loaded
    check_amp(cfg.amp, device)
    init_distributed(cfg)
    evaluator = None
    if cfg.eval_every:
        from ..evaluation import TrainingEvaluator

        evaluator = TrainingEvaluator(cfg)
    trainer = Trainer(cfg, resume_from=resume_from, evaluator=evaluator)
    try:
        summary = trainer.fit()
    except DiskFullError as exc:
        raise exc.with_hint(_resume_hint(Path(cfg.out))) from None
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
