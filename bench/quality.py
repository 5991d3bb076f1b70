"""Sample-quality benchmark: every variant trained for the same budget, then evaluated.

``python -m bench quality [options]`` (dispatched by ``bench/__main__.py``) or
``python -m bench.quality [options]``. Each variant is trained with its preset by
:class:`gan_accel.trainer.Trainer` for ``--epochs`` (or ``--steps``) on the same data and seed,
then measured by :func:`gan_accel.evaluation.evaluate_variant`: FID and KID in the reference
classifier's feature space against the real-data floor, class coverage, cGAN label accuracy,
InfoGAN categorical-code accuracy (Q head on held-out real images, Hungarian-matched) and the
D linear probe. One row per variant, with its training wall time and the project's targets:

* every unconditional variant: 10 classes present and the largest class share <= 15%;
* cgan: label accuracy >= 99%; infogan: code accuracy >= 97%;
* dcgan and wgan-gp: FID <= 2x the real-data floor.

Results: ``<out-dir>/<date>-<device>-quality[-quick].json`` plus the markdown table drawn from
it (``bench.common.write_result``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from gan_accel.data import DATASETS

TARGETS = {"share": 0.15, "label": 0.99, "code": 0.97, "fid_ratio": 2.0}
FID_TARGET_MODELS = ("dcgan", "wgan-gp")
QUICK = {"steps": 20, "eval_n": 200, "kid_subsets": 10, "probe_train": 300, "probe_test": 200,
         "probe_epochs": 30}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The quality suite's options (it runs alone: ``python -m bench quality ...``)."""
    g = parser.add_argument_group("quality suite")
    g.add_argument("--models", default=None, metavar="NAME,...",
                   help="variants to train and evaluate (default: every variant; --quick: "
                        "dcgan)")
    g.add_argument("--epochs", type=int, default=5,
                   help="training epochs per variant, the same for all (default: 5)")
    g.add_argument("--steps", type=int, default=None, metavar="N",
                   help="train N steps instead of --epochs (--quick: 20)")
    g.add_argument("--dataset", default="mnist-5k",
                   choices=DATASETS,
                   help="training data and reference classifier (default: mnist-5k)")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the dataset's IDX files")
    g.add_argument("--eval-n", type=int, default=None, metavar="N",
                   help="generated images per evaluation, vs as many real ones (default: "
                        "2000; --quick: 200)")
    g.add_argument("--kid-subsets", type=int, default=None, metavar="N",
                   help="KID subsets (default: 100; --quick: 10)")
    g.add_argument("--seed", type=int, default=0, help="training and evaluation seed")
    g.add_argument("--runs-dir", type=Path, default=None, metavar="DIR",
                   help="keep each variant's run in DIR/<model> (default: a temporary folder, "
                        "deleted afterwards)")
    g.add_argument("--quick", action="store_true",
                   help="tiny budget for the test suite: 20 steps, 200 images, small probe")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    g.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                   help="where the JSON and markdown go (default: bench/results/)")


def _models(text: str | None, quick: bool) -> list[str]:
    from gan_accel.errors import UserError
    from gan_accel.variants import VARIANTS

    if not text:
        return ["dcgan"] if quick else list(VARIANTS)
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in VARIANTS]
    if unknown or not names:
        raise UserError(f"--models: unknown {', '.join(unknown) or '(empty)'}; choose from "
                        f"{', '.join(VARIANTS)}")
    return names


def _settings(args) -> dict:
    from gan_accel.errors import UserError

    s = {
        "steps": args.steps if args.steps is not None else (QUICK["steps"] if args.quick else 0),
        "eval_n": args.eval_n or (QUICK["eval_n"] if args.quick else 2000),
        "kid_subsets": args.kid_subsets or (QUICK["kid_subsets"] if args.quick else 100),
        "probe_train": QUICK["probe_train"] if args.quick else None,
        "probe_test": QUICK["probe_test"] if args.quick else None,
        "probe_epochs": QUICK["probe_epochs"] if args.quick else 100,
    }
    if args.epochs < 1 or s["steps"] < 0:
        raise UserError(f"need --epochs >= 1 and --steps >= 0; got {args.epochs}, {args.steps}")
    if s["eval_n"] < 10 or s["kid_subsets"] < 1:
        raise UserError("need --eval-n >= 10 and --kid-subsets >= 1")
    return s


def targets(model: str, row: dict) -> str:
    """'met' or 'missed: ...' for the project's quality targets that apply to ``model``."""
    missed = []
    if model != "cgan":
        if row.get("classes_present") != 10:
            missed.append(f"{row.get('classes_present')}/10 classes")
        share = row.get("largest_class_share")
        if share is not None and share > TARGETS["share"]:
            missed.append(f"largest share {share:.1%} > {TARGETS['share']:.0%}")
    else:
        acc = row.get("label_accuracy")
        if acc is not None and acc < TARGETS["label"]:
            missed.append(f"label acc {acc:.1%} < {TARGETS['label']:.0%}")
    if model == "infogan":
        acc = row.get("code_accuracy")
        if acc is not None and acc < TARGETS["code"]:
            missed.append(f"code acc {acc:.1%} < {TARGETS['code']:.0%}")
    if model in FID_TARGET_MODELS:
        ratio = row.get("fid_ratio")
        if ratio is not None and ratio > TARGETS["fid_ratio"]:
            missed.append(f"FID {ratio:.2f}x floor > {TARGETS['fid_ratio']:.0f}x")
    return "missed: " + "; ".join(missed) if missed else "met"


ROW_KEYS = ("fid", "fid_floor", "fid_ratio", "kid", "kid_floor", "classes_present",
            "largest_class_share", "collapsed", "label_accuracy", "code_accuracy",
            "code_accuracy_generated", "d_probe_accuracy")


def _one(model: str, args, s: dict, run_dir: Path, log) -> tuple[dict, dict]:
    """Train and evaluate one variant: (table row, full evaluation dict)."""
    from gan_accel.config import TrainConfig
    from gan_accel.evaluation import evaluate_variant
    from gan_accel.training.trainer import Trainer

    cfg = TrainConfig.preset(model, epochs=args.epochs, max_steps=s["steps"],
                             dataset=args.dataset, data_dir=args.data_dir, seed=args.seed,
                             device=args.device, out=str(run_dir), progress=False,
                             log_every=10_000)
    trainer = Trainer(cfg, log=lambda *_: None)
    t0 = time.perf_counter()
    summary = trainer.fit()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    probe = {k: s[k] for k in ("probe_train", "probe_test") if s[k]}
    full = evaluate_variant(trainer.variant, args.dataset, s["eval_n"], data_dir=args.data_dir,
                            device=trainer.device, kid_subsets=s["kid_subsets"], seed=args.seed,
                            probe_epochs=s["probe_epochs"], **probe)
    eval_s = time.perf_counter() - t0
    row = {"model": model, "status": "ok", "steps": summary["steps"],
           "epochs_done": round(summary["steps"] / trainer.loader.batches_per_epoch, 2),
           **{k: full.get(k) for k in ROW_KEYS}}
    row["targets"] = targets(model, row)
    row["train_s"], row["eval_s"] = round(train_s, 1), round(eval_s, 1)
    return row, full


def run(args: argparse.Namespace) -> dict:
    """Train + evaluate each variant; returns ``{"config", "rows", "notes", "details"}``."""
    models = _models(args.models, args.quick)
    s = _settings(args)
    log = print
    tmp = None
    runs_dir = args.runs_dir
    if runs_dir is None:
        tmp = tempfile.mkdtemp(prefix="gan-accel-quality-")
        runs_dir = Path(tmp)
    rows, details = [], {}
    try:
        for model in models:
            budget = f"{s['steps']} steps" if s["steps"] else f"{args.epochs} epochs"
            log(f"quality: {model}: training {budget} on {args.dataset} ...", flush=True)
            try:
                row, full = _one(model, args, s, runs_dir / model, log)
            except Exception as exc:  # noqa: BLE001 - one variant failing must not end the run
                from gan_accel.errors import UserError

                if isinstance(exc, UserError) and len(models) == 1:
                    raise
                traceback.print_exc()
                row, full = {"model": model, "status": f"error: {exc}"[:200]}, {}
            rows.append(row)
            details[model] = full
            if row["status"] == "ok":
                log(f"quality: {model}: FID {row['fid']:.2f} (floor {row['fid_floor']:.2f}), "
                    f"{row['classes_present']}/10 classes, largest "
                    f"{row['largest_class_share']:.1%}, train {row['train_s']} s; targets "
                    f"{row['targets']}", flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    budget = f"{s['steps']} steps" if s["steps"] else f"{args.epochs} epochs"
    notes = [
        f"every variant trained with its preset for {budget} on {args.dataset}, seed "
        f"{args.seed}, then {s['eval_n']} generated images compared with {s['eval_n']} real "
        "ones in the reference classifier's 128-d feature space",
        "fid_floor / kid_floor: the same metric between two disjoint real sets of that size "
        "(what a perfect generator would score); fid_ratio = fid / fid_floor",
        "classes / largest share: the reference classifier's predictions on generated images; "
        "cgan samples cycle through the labels, infogan samples through the categorical codes",
        "code_accuracy: infogan's Q head on held-out real images vs the true digits after "
        "Hungarian matching; code_accuracy_generated: the generating code vs the classifier",
        "d_probe_accuracy: logistic regression on frozen D.features of real images (train on "
        "the probe train split, score on held-out images); cgan's D gets the constant label 0",
        "targets: unconditional variants 10 classes and largest share <= 15%; cgan label "
        "accuracy >= 99%; infogan code accuracy >= 97%; dcgan, wgan-gp FID <= 2x floor",
    ]
    config = {"models": models, "epochs": args.epochs, **s, "dataset": args.dataset,
              "seed": args.seed, "device": args.device}
    return {"config": config, "rows": rows, "notes": notes, "details": details}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.quality``: run the suite and write its JSON + markdown."""
    import torch

    from gan_accel.devices import select_device
    from gan_accel.errors import OneLineParser

    from .common import Result, environment, write_result
    from .document import DEFAULT_OUT

    parser = OneLineParser(prog="python -m bench.quality",
                           description="Sample-quality benchmark: train each variant for the "
                                       "same budget, then evaluate it.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    env = environment(select_device(args.device), torch.get_num_threads())  # commit at start
    out = run(args)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(out["config"])
    result = Result("quality", config, out["rows"], out["notes"])
    write_result(result, env, args.out_dir or DEFAULT_OUT, args.quick)
    return 0 if all(r["status"] == "ok" for r in out["rows"]) else 1


if __name__ == "__main__":
    from gan_accel.errors import run_cli

    sys.exit(run_cli(main))
