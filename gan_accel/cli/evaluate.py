"""``python -m gan_accel.evaluate``: sample quality of a trained generator, and the classifiers.

Evaluate a run (or an exported ONNX generator)::

    python -m gan_accel.evaluate --checkpoint runs/dcgan [--best] [--ema] [--n 2000]
    python -m gan_accel.evaluate --onnx g.onnx [--dataset mnist-5k] [--n 2000]

prints a table (FID, KID, precision/recall, density/coverage, each with its real-data floor,
class coverage, cGAN label accuracy, InfoGAN code accuracy, D linear probe) under a line
naming the feature space they are in, and writes every number to ``--out`` (default
``RUN_DIR/eval.json``, or ``<g>.eval.json`` beside an ONNX file). ``--inception-weights
PATH`` adds Inception FID from a local weights file.

Re-create a shipped evaluation classifier, or train a labelled folder's ahead of time::

    python -m gan_accel.evaluate train-classifier --dataset mnist-5k|fashion-mnist [--epochs N]
    python -m gan_accel.evaluate train-classifier --dataset folder --data-dir DIR
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
from ..evaluation.feature_space import SPACE_CHOICES

DEFAULT_EPOCHS = {"mnist-5k": 25, "fashion-mnist": 12}
DEFAULT_TRAIN_SUBSET = 0


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="gan_accel.evaluate",
        description="Measure a generator's samples in a named feature space (the evaluation "
                    "classifier's, or random-cnn-seed0 for unlabelled folders): FID, KID, "
                    "precision/recall, density/coverage, each against its real-data floor, "
                    "class coverage, cGAN label accuracy, InfoGAN code accuracy and the D "
                    "linear probe.",
        epilog="Subcommand: 'python -m gan_accel.evaluate train-classifier --help' re-creates "
               "a shipped evaluation classifier or trains a labelled folder's.")
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
                   help="folder with the dataset's IDX files, or the image folder (default: "
                        "the run's)")
    p.add_argument("--feature-space", default="auto", choices=SPACE_CHOICES,
                   help="auto: labelled data in its evaluation classifier's space, unlabelled "
                        "in random-cnn-seed0 (a fixed random CNN); or ask for one")
    p.add_argument("--inception-weights", default=None, metavar="PATH",
                   help="also report Inception FID, computed by torchmetrics from this local "
                        "InceptionV3 weights file (needs the [inception] extra; nothing is "
                        "downloaded)")
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
                      description="Train an evaluation classifier and save it with its held-out "
                                  "accuracy and this command in its metadata: a shipped one "
                                  "(mnist-5k, fashion-mnist), or a labelled dataset's own "
                                  "(a folder, emoji), cached beside its dataset cache.")
    p.add_argument("--dataset", required=True, choices=DATASETS,
                   help="mnist-5k: the embedded subset minus 1,000 stratified held-out images; "
                        "fashion-mnist: a train-split subset, tested on the 10k test split; "
                        "a labelled folder or emoji: its stratified 80%%, tested on the other "
                        "20%%")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training images (default: 25 for mnist-5k, 12 for "
                        "fashion-mnist, about 1,500 steps within 5-30 epochs otherwise)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="weights file of a shipped classifier (default: "
                        "gan_accel/assets/classifier-<dataset>.safetensors)")
    p.add_argument("--train-subset", type=int, default=DEFAULT_TRAIN_SUBSET,
                   help="fashion-mnist: train on a stratified subset of this many images of "
                        "the 60k train split (default: 0, all of it)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch (default: 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam lr (default: 2e-3)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (4 at 64 px) (default: on)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="fashion-mnist IDX folder (default: /usr/share/datasets/fashion-mnist), "
                        "or the image folder")
    p.add_argument("--resolution", type=int, default=0, choices=(0, 28, 32, 64),
                   help="a folder's or emoji's image side, as the runs it measures use it (0: "
                        "the dataset's own)")
    p.add_argument("--channels", type=int, default=0, choices=(0, 1, 3),
                   help="a folder's or emoji's channels (0: from the data)")
    return p


# --------------------------------------------------------------------------- train-classifier


def train_classifier_main(argv: list[str]) -> int:
    from ..evaluation import train_eval_classifier
    from ..evaluation.pipeline import has_shipped_classifier, train_data_classifier_for

    args = build_classifier_parser().parse_args(argv)
    augment = True if args.augment is None else args.augment
    if args.batch_size < 1 or not args.lr > 0 or args.train_subset < 0:
        raise UserError("need --batch-size >= 1, --lr > 0 and --train-subset >= 0")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {args.epochs}")
    if args.out and Path(args.out).suffix != ".safetensors":
        raise UserError(f"--out {args.out} must end in .safetensors")
    command = "python -m gan_accel.evaluate " + shlex.join(["train-classifier", *argv])
    if has_shipped_classifier(args.dataset):
        epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS.get(args.dataset, 1)
        train_eval_classifier(args.dataset, epochs=epochs, out=args.out,
                              data_dir=args.data_dir, train_subset=args.train_subset,
                              batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                              augment=augment, command=command, log=print)
        return 0
    if args.out:
        raise UserError(f"--out is for the shipped classifiers; {args.dataset}'s is cached "
                        "beside its dataset cache")
    train_data_classifier_for(args.dataset, args.data_dir, resolution=args.resolution,
                              channels=args.channels, epochs=args.epochs or 0,
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
    feature_space: str = "auto"  # auto, classifier or random-cnn
    inception_weights: str | None = None  # a local InceptionV3 weights file: + Inception FID


def _inception(settings: EvalSettings, device: torch.device):
    """Inception FID from the local weights file, checked before any work (or None)."""
    if settings.inception_weights is None:
        return None
    from ..evaluation import InceptionFID

    return InceptionFID(settings.inception_weights, device)


def evaluate_checkpoint(checkpoint: str, which: str, ema: bool | None, settings: EvalSettings,
                        device: torch.device) -> tuple[dict[str, Any], Path]:
    """Evaluate a run's checkpoint (``which``: last or best); (result, default output path).

    The real images are the run's data at the run's resolution, channels and background
    (another ``settings.dataset`` is read at that shape too)."""
    from ..checkpoints import load_trained
    from ..evaluation import evaluate_variant, load_real_data

    variant, meta = load_trained(checkpoint, which, ema, device)
    cfg = meta["config"]
    inception = _inception(settings, device)
    dataset = settings.dataset or cfg.get("dataset", "mnist-5k")
    data_dir = settings.data_dir or cfg.get("data_dir")
    real = load_real_data(dataset, data_dir, settings.probe_train, settings.probe_test,
                          log=print, resolution=cfg.get("resolution", 0),
                          channels=cfg.get("channels", 0), background=cfg.get("background"))
    result = evaluate_variant(variant, dataset, settings.n, device=device, real=real,
                              kid_subsets=settings.kid_subsets, probe=settings.probe,
                              seed=settings.seed, feature_space=settings.feature_space,
                              inception=inception, log=print)
    ckpt = Path(meta["checkpoint"])
    result = {"source": "checkpoint", "checkpoint": str(ckpt), "which": which,
              "ema": meta["ema"], "step": meta.get("position", {}).get("step"), **result}
    return result, ckpt.parent.parent / "eval.json"


def _onnx_source_config(meta) -> dict:
    """The config of the checkpoint an ONNX file was exported from ({} if it cannot be read)."""
    from ..checkpoints import read_meta
    from ..errors import CheckpointError

    source = getattr(meta, "source", "") or ""
    if not source.endswith(".json") or not Path(source).is_file():
        return {}
    try:
        return read_meta(Path(source)).get("config", {})
    except CheckpointError:
        return {}


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
        feature_space_for,
        load_real_data,
    )

    path = Path(onnx)
    if not path.is_file():
        raise UserError(f"--onnx {path} does not exist; export one with "
                        "python -m gan_accel.export")
    inception = _inception(settings, device)
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
    cfg = _onnx_source_config(meta)
    dataset = settings.dataset or cfg.get("dataset") or "mnist-5k"
    real = load_real_data(dataset, settings.data_dir or cfg.get("data_dir"),
                          settings.probe_train, settings.probe_test, log=print,
                          resolution=cfg.get("resolution", 0), channels=cfg.get("channels", 0),
                          background=cfg.get("background"))
    space = feature_space_for(real, settings.feature_space, device, log=print)
    real_features = build_real_features(space, real, settings.n, settings.kid_subsets,
                                        settings.seed)
    try:
        result = evaluate_generator(onnx_sample_fn(gen), meta.output_range,
                                    num_classes=meta.num_classes, cat_dim=meta.cat_dim,
                                    real_features=real_features, seed=settings.seed,
                                    inception=inception)
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
                            probe_test=args.probe_test, feature_space=args.feature_space,
                            inception_weights=args.inception_weights)
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
          f"({result['real_images']})")
    print(format_table(result))
    try:
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror}); choose another --out") from None
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
