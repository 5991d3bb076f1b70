"""``python -m gan_accel.evaluate``: sample quality of a trained generator, and the classifiers.

Evaluate a run (or an exported ONNX generator)::

    python -m gan_accel.evaluate --checkpoint runs/dcgan [--best] [--ema] [--n 2000]
    python -m gan_accel.evaluate --onnx g.onnx [--dataset mnist-5k] [--n 2000]

prints a table (FID, KID, real-data floor, class coverage, cGAN label accuracy, InfoGAN code
accuracy, D linear probe) and writes every number to ``--out`` (default ``RUN_DIR/eval.json``,
or ``<g>.eval.json`` beside an ONNX file).

Re-create a shipped evaluation classifier::

    python -m gan_accel.evaluate train-classifier --dataset mnist-5k|fashion-mnist [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..data import DATASETS
from ..errors import OneLineParser, UserError, run_cli
from ..evaluation.pipeline import CLASSIFIER_DATASETS

DEFAULT_EPOCHS = {"mnist-5k": 25, "fashion-mnist": 12}
DEFAULT_TRAIN_SUBSET = 0


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="gan_accel.evaluate",
        description="Measure a generator's samples in the evaluation classifier's feature space: "
                    "FID, KID, the real-data floor, class coverage, cGAN label accuracy, "
                    "InfoGAN code accuracy and the D linear probe.",
        epilog="Subcommand: 'python -m gan_accel.evaluate train-classifier --help' re-creates "
               "a shipped evaluation classifier.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="RUN_DIR", help="run dir or checkpoint .json")
    src.add_argument("--onnx", metavar="FILE", help="exported generator (.onnx); generator "
                     "metrics only (no D probe, no Q-head code accuracy)")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate the EMA generator (default: when the run kept one) or, with "
                        "--no-ema, the trained G itself")
    p.add_argument("--n", type=int, default=2000,
                   help="generated images, compared with as many real ones; the floor uses "
                        "another n (default: 2000; mnist-5k allows at most 2500)")
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="real data and classifier (default: the run's dataset; ONNX: its "
                        "metadata, else mnist-5k)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the dataset's IDX files (default: the run's)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="metrics JSON (default: RUN_DIR/eval.json; ONNX: FILE.eval.json)")
    p.add_argument("--seed", type=int, default=0, help="latent / subset seed (default: 0)")
    p.add_argument("--kid-subsets", type=int, default=100,
                   help="KID subsets of min(n, 1000) rows (default: 100)")
    p.add_argument("--no-probe", action="store_true", help="skip the D linear probe")
    p.add_argument("--probe-train", type=int, default=4000, metavar="N",
                   help="labelled real images the D probe is fitted on (default: 4000)")
    p.add_argument("--probe-test", type=int, default=1000, metavar="N",
                   help="held-out real images the D probe and InfoGAN's Q head are scored on "
                        "(default: 1000)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    return p


def build_classifier_parser() -> OneLineParser:
    p = OneLineParser(prog="gan_accel.evaluate train-classifier",
                      description="Train a evaluation classifier and save it with its held-out "
                                  "accuracy and this command in its metadata.")
    p.add_argument("--dataset", required=True, choices=CLASSIFIER_DATASETS,
                   help="mnist-5k: the embedded subset minus 1,000 stratified held-out images; "
                        "fashion-mnist: a train-split subset, tested on the 10k test split")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training images (default: 25 for mnist-5k, 12 for "
                        "fashion-mnist)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="weights file (default: the shipped "
                        "gan_accel/assets/classifier-<dataset>.safetensors)")
    p.add_argument("--train-subset", type=int, default=DEFAULT_TRAIN_SUBSET,
                   help="fashion-mnist: train on a stratified subset of this many images of "
                        "the 60k train split (default: 0, all of it)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch (default: 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam lr (default: 2e-3)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (default: on)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="fashion-mnist IDX folder (default: /usr/share/datasets/fashion-mnist)")
    return p


# --------------------------------------------------------------------------- train-classifier


def train_classifier_main(argv: list[str]) -> int:
    from ..evaluation import train_eval_classifier

    args = build_classifier_parser().parse_args(argv)
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[args.dataset]
    augment = True if args.augment is None else args.augment
    if args.batch_size < 1 or not args.lr > 0 or args.train_subset < 0:
        raise UserError("need --batch-size >= 1, --lr > 0 and --train-subset >= 0")
    if args.out and Path(args.out).suffix != ".safetensors":
        raise UserError(f"--out {args.out} must end in .safetensors")
    command = "python -m gan_accel.evaluate " + shlex.join(["train-classifier", *argv])
    train_eval_classifier(args.dataset, epochs=epochs, out=args.out,
                               data_dir=args.data_dir, train_subset=args.train_subset,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               augment=augment, command=command, log=print)
    return 0


# --------------------------------------------------------------------------- evaluation


def _check_out(path: Path) -> Path:
    if path.suffix.lower() != ".json":
        raise UserError(f"--out {path} must end in .json")
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist; create it first")
    return path


@dataclass(frozen=True)
class EvalSettings:
    """How a generator is measured: sample count, real data, seed (from the command line)."""

    n: int
    kid_subsets: int
    seed: int
    dataset: str | None  # None: the dataset the generator was trained on
    data_dir: str | None
    probe: bool = True
    probe_train: int = 4000
    probe_test: int = 1000


def evaluate_checkpoint(checkpoint: str, which: str, ema: bool | None, settings: EvalSettings,
                        device: torch.device) -> tuple[dict[str, Any], Path]:
    """Evaluate a run's checkpoint (``which``: last or best); (result, default output path)."""
    from ..checkpoints import load_trained
    from ..evaluation import evaluate_variant

    variant, meta = load_trained(checkpoint, which, ema, device)
    cfg = meta["config"]
    dataset = settings.dataset or cfg.get("dataset", "mnist-5k")
    data_dir = settings.data_dir or cfg.get("data_dir")
    result = evaluate_variant(variant, dataset, settings.n, data_dir=data_dir, device=device,
                              kid_subsets=settings.kid_subsets, probe=settings.probe,
                              probe_train=settings.probe_train, probe_test=settings.probe_test,
                              seed=settings.seed, log=print)
    ckpt = Path(meta["checkpoint"])
    result = {"source": "checkpoint", "checkpoint": str(ckpt), "which": which,
              "ema": meta["ema"], "step": meta.get("position", {}).get("step"), **result}
    return result, ckpt.parent.parent / "eval.json"


def _onnx_dataset(meta) -> str | None:
    """The dataset of the checkpoint an ONNX file was exported from, if it can be read."""
    from ..checkpoints import read_meta
    from ..errors import CheckpointError

    source = getattr(meta, "source", "") or ""
    if not source.endswith(".json") or not Path(source).is_file():
        return None
    try:
        return read_meta(Path(source)).get("config", {}).get("dataset")
    except CheckpointError:
        return None


def onnx_sample_fn(gen):
    """A :class:`~gan_accel.evaluation.SampleFn` over ``export.runtime.OnnxGenerator``.

    ``classes`` become its ``label`` (cGAN class or InfoGAN categorical code; InfoGAN's
    continuous codes are drawn by the runtime). Latents are drawn with numpy from ``seed``,
    so they differ from a checkpoint's torch-drawn ones (same distribution).
    """

    def sample(n: int, *, seed: int, classes: torch.Tensor | None = None) -> torch.Tensor:
        label = None if classes is None else classes.numpy().astype(np.int64)
        try:
            images = gen.sample(n, seed=seed, label=label)
        except ValueError as exc:
            raise UserError(f"{gen.path}: {exc}") from None
        return torch.from_numpy(np.ascontiguousarray(images)).float()

    return sample


def evaluate_onnx(onnx: str, settings: EvalSettings,
                  device: torch.device) -> tuple[dict[str, Any], Path]:
    """Evaluate an exported ONNX generator; (result, default output path)."""
    from ..evaluation import (
        build_real_features,
        describe_real_features,
        evaluate_generator,
        load_eval_classifier,
        load_real_data,
    )

    path = Path(onnx)
    if not path.is_file():
        raise UserError(f"--onnx {path} does not exist; export one with "
                        "python -m gan_accel.export")
    try:
        from ..export.runtime import OnnxGenerator
    except ImportError as exc:
        raise UserError(f"--onnx needs the export package's runtime and onnxruntime ({exc}); "
                        "install gan-accel with its onnx dependencies") from None
    providers = None if device.type == "cuda" else ["CPUExecutionProvider"]
    try:
        gen = OnnxGenerator(str(path), providers=providers)
    except ValueError as exc:  # export.runtime.ModelFileError
        raise UserError(str(exc).splitlines()[0]) from None
    meta = gen.meta
    dataset = settings.dataset or _onnx_dataset(meta) or "mnist-5k"
    clf, cmeta = load_eval_classifier(dataset, device)
    real = load_real_data(dataset, settings.data_dir, log=print)
    real_features = build_real_features(clf, cmeta, real, settings.n, settings.kid_subsets,
                                        settings.seed)
    try:
        result = evaluate_generator(onnx_sample_fn(gen), meta.output_range,
                                    num_classes=meta.num_classes, cat_dim=meta.cat_dim,
                                    real_features=real_features, seed=settings.seed)
    finally:
        gen.close()
    result = {"source": "onnx", "onnx": str(path), "variant": meta.variant,
              "step": meta.step, "ema": meta.ema, "dataset": dataset,
              **describe_real_features(real_features, real, settings.seed), **result}
    return result, path.with_suffix(".eval.json")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train-classifier":
        return train_classifier_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.n < 2:
        raise UserError(f"--n must be >= 2, got {args.n}")
    if args.kid_subsets < 1:
        raise UserError(f"--kid-subsets must be >= 1, got {args.kid_subsets}")
    if args.probe_train < 20 or args.probe_test < 10:
        raise UserError("need --probe-train >= 20 and --probe-test >= 10 (labelled images per "
                        "split of the D probe)")
    if args.onnx and (args.best or args.ema is not None):
        raise UserError("--best / --ema select a checkpoint; drop them with --onnx")
    out = _check_out(Path(args.out)) if args.out else None
    from ..devices import select_device

    device = select_device(args.device)
    settings = EvalSettings(n=args.n, kid_subsets=args.kid_subsets, seed=args.seed,
                            dataset=args.dataset, data_dir=args.data_dir,
                            probe=not args.no_probe, probe_train=args.probe_train,
                            probe_test=args.probe_test)
    t0 = time.perf_counter()
    if args.onnx:
        result, default_out = evaluate_onnx(args.onnx, settings, device)
    else:
        result, default_out = evaluate_checkpoint(args.checkpoint,
                                                  "best" if args.best else "last", args.ema,
                                                  settings, device)
    out = out or default_out
    result["eval_seconds"] = round(time.perf_counter() - t0, 2)
    result["command"] = "python -m gan_accel.evaluate " + shlex.join(argv)
    result["versions"] = {"gan_accel": __version__, "torch": torch.__version__}
    result["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    from ..checkpoints import atomic_write_text
    from ..evaluation import format_table

    name = result.get("variant") or "generator"
    print(f"{name} on {result['dataset']}: {result['n']} generated vs {result['n']} real images "
          f"({result['real_images']}), classifier {result['classifier']} "
          f"(held-out accuracy {result['classifier_heldout_accuracy']:.2%})")
    print(format_table(result))
    try:
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror}); choose another --out") from None
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
