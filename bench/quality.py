"""Sample quality and time to quality: every variant trained with its tuned recipe,
evaluated as it trains.

``python -m gan_accel.bench quality [options]``. Each variant is trained with its tuned recipe
(its own epochs: ``python -m gan_accel.train --model X`` trains the same run) by
:class:`gan_accel.training.trainer.Trainer`, in each ``--modes`` (eager and ``--compile``).
Every ``--eval-every`` steps the shipped evaluator measures the EMA generator (2,000
generated images against 2,000 real ones in the evaluation classifier's feature space, plus
InfoGAN's Q-head code accuracy on held-out real digits) and the training seconds so far
(evaluation excluded). The first evaluation at which each target holds gives the variant's
*time to quality*: its step and its seconds. At the end the full evaluation
(:func:`gan_accel.evaluation.evaluate_variant`, with the D linear probe) makes the table row.

Targets (:func:`targets`): every variant but cgan covers 10 classes with the largest share
<= 15%; FID / floor <= 10 for dcgan, <= 20 for the others; cgan label accuracy >= 99% (and,
checked across rows, its FID no worse than dcgan's); infogan code accuracy >= 95%.

Results: ``<out-dir>/<date>-<device>-quality[-<dataset>].json`` with the curves, plus the
markdown table and the FID-vs-seconds PNG drawn from it (``bench.report``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gan_accel.data import DATASETS

COVERAGE_SHARE = 0.15
# began's autoencoder D, far from the others at this budget, has a looser FID target
FID_RATIO = {"dcgan": 10.0, "began": 40.0}
FID_RATIO_OTHERS = 20.0
LABEL_ACCURACY = 0.99
CODE_ACCURACY = 0.95
QUICK = {"steps": 20, "eval_n": 200, "kid_subsets": 10, "probe_train": 300, "probe_test": 200,
         "probe_epochs": 30}
MODES = ("eager", "compiled")
EVALS_PER_RUN = 10  # default --eval-every: this many evaluations over a run
ROW_KEYS = ("feature_space", "fid", "fid_floor", "fid_ratio", "kid", "kid_floor", "precision",
            "recall", "density", "coverage", "classes_present", "num_classes",
            "largest_class_share", "max_share_ratio", "max_share_ratio_class",
            "max_share_ratio_floor", "collapsed", "label_accuracy", "code_accuracy",
            "code_accuracy_generated", "spread_ratio", "noise_ignored", "d_probe_accuracy")


# --------------------------------------------------------------------------- targets
# Folders and emoji are unbalanced: coverage there is every class present and no class's
# generated share above this multiple of its share in the real data; FID / floor is reported.
SHARE_RATIO = 1.5
MNIST_LIKE = ("mnist-5k", "mnist", "fashion-mnist")


def fid_target(model: str) -> float:
    return FID_RATIO.get(model, FID_RATIO_OTHERS)


def target_checks(model: str, dataset: str = "mnist-5k"
                  ) -> dict[str, Callable[[dict], bool | None]]:
    """Named checks for ``model`` on ``dataset``: each returns True (met), False, or None (not
    measured). MNIST-like data: coverage (10 classes, largest share <= 15%) and FID / floor;
    other labelled data: relative coverage only (every class present, no class's share above
    1.5x its real share); unlabelled data has no class checks."""
    mnist_like = dataset in MNIST_LIKE

    def coverage(r):
        if r.get("classes_present") is None:
            return None
        if mnist_like:
            return r["classes_present"] == 10 and r["largest_class_share"] <= COVERAGE_SHARE
        return (r["classes_present"] == r["num_classes"]
                and r["max_share_ratio"] <= SHARE_RATIO)

    def fid(r):
        return None if r.get("fid_ratio") is None else r["fid_ratio"] <= fid_target(model)

    checks = {"fid": fid} if mnist_like else {}
    if model == "cgan":
        checks["label"] = lambda r: (None if r.get("label_accuracy") is None
                                     else r["label_accuracy"] >= LABEL_ACCURACY)
    else:
        checks["coverage"] = coverage
    if model == "infogan":
        checks["code"] = lambda r: (None if r.get("code_accuracy") is None
                                    else r["code_accuracy"] >= CODE_ACCURACY)
        checks["noise"] = lambda r: (None if r.get("noise_ignored") is None
                                     else not r["noise_ignored"])
    return checks


def targets(model: str, row: dict, dataset: str = "mnist-5k") -> str:
    """'met', 'missed: ...', or 'not measured' for the targets that apply to ``model``."""
    missed = []
    checks = target_checks(model, dataset)
    outcome = {name: check(row) for name, check in checks.items()}
    if outcome.get("coverage") is False:
        k = row.get("num_classes", 10)
        if row["classes_present"] != k:
            missed.append(f"{row['classes_present']}/{k} classes")
        elif dataset in MNIST_LIKE:
            missed.append(f"largest share {row['largest_class_share']:.1%} > "
                          f"{COVERAGE_SHARE:.0%}")
        else:
            missed.append(f"{row['max_share_ratio_class']} share {row['max_share_ratio']:.2f}x "
                          f"its real share > {SHARE_RATIO}x")
    if outcome.get("fid") is False:
        missed.append(f"FID {row['fid_ratio']:.1f}x floor > {fid_target(model):.0f}x")
    if outcome.get("label") is False:
        missed.append(f"label acc {row['label_accuracy']:.1%} < {LABEL_ACCURACY:.0%}")
    if outcome.get("code") is False:
        missed.append(f"code acc {row['code_accuracy']:.1%} < {CODE_ACCURACY:.0%}")
    if outcome.get("noise") is False:
        missed.append(f"G ignores z: spread {row['spread_ratio']:.2f}")
    if missed:
        return "missed: " + "; ".join(missed)
    return "met" if any(v is not None for v in outcome.values()) else "not measured"


def time_to_quality(model: str, evals: list[dict], dataset: str = "mnist-5k"
                    ) -> dict[str, dict | None]:
    """The first evaluation (step, training seconds) at which each target held, and ``all``:
    the first at which every target held at once; None where none did."""
    checks = target_checks(model, dataset)
    first: dict[str, dict | None] = {name: None for name in [*checks, "all"]}
    for e in sorted(evals, key=lambda e: e["step"]):
        met = {name: check(e) for name, check in checks.items()}
        for name, ok in met.items():
            if ok and first[name] is None:
                first[name] = {"step": e["step"], "seconds": e["train_seconds"]}
        if met and all(met.values()) and first["all"] is None:
            first["all"] = {"step": e["step"], "seconds": e["train_seconds"]}
    return first


# --------------------------------------------------------------------------- options
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The quality suite's options (it runs alone: ``python -m gan_accel.bench quality ...``)."""
    g = parser.add_argument_group("quality suite")
    g.add_argument("--models", default=None, metavar="NAME,...",
                   help="variants to train and evaluate (default: every variant; --quick: "
                        "dcgan)")
    g.add_argument("--modes", default="eager", metavar="MODE,...",
                   help=f"training modes, each a separate run: {', '.join(MODES)} "
                        "(default: eager)")
    g.add_argument("--epochs", type=int, default=None,
                   help="epochs for every variant (default: each tuned recipe's own)")
    g.add_argument("--steps", type=int, default=None, metavar="N",
                   help="train N steps instead (--quick: 20)")
    g.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help=f"evaluate every N steps (default: {EVALS_PER_RUN} evaluations per run)")
    g.add_argument("--dataset", default="mnist-5k", choices=DATASETS,
                   help="training data and evaluation classifier (default: mnist-5k)")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the dataset's IDX files, or the image folder of "
                        "--dataset folder")
    g.add_argument("--eval-n", type=int, default=None, metavar="N",
                   help="generated images per evaluation, vs as many real ones (default: "
                        "2000; --quick: 200)")
    g.add_argument("--kid-subsets", type=int, default=None, metavar="N",
                   help="KID subsets of the final evaluation (default: 100; --quick: 10)")
    g.add_argument("--seeds", default="0", metavar="N,...",
                   help="training and evaluation seeds, one run each (rows give the mean and "
                        "minimum over seeds in the notes; default: 0)")
    g.add_argument("--tag", default="", metavar="TEXT",
                   help="appended to the result file's name (e.g. when the variants are split "
                        "across processes)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field for every variant, e.g. --set ema=0 (the "
                        "rows then no longer measure the shipped recipes; said in the notes)")
    g.add_argument("--runs-dir", type=Path, default=None, metavar="DIR",
                   help="keep each run in DIR/<model>[-compiled] (default: a temporary folder, "
                        "deleted afterwards)")
    g.add_argument("--quick", action="store_true",
                   help="tiny budget for the test suite: 20 steps, 200 images, small probe")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    g.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                   help="where the JSON, markdown and PNG go (default: bench/results/)")


def _overrides(items: list[str]) -> dict:
    """``--set key=value`` pairs, typed like the TrainConfig field (checked by validate)."""
    import dataclasses

    from gan_accel.config import TrainConfig, field_type
    from gan_accel.errors import UserError

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise UserError(f"--set {item!r}: expected KEY=VALUE with KEY a training flag, "
                            "e.g. --set ema=0")
        kind = field_type(fields[key])
        try:
            out[key] = (value.lower() in ("1", "true", "yes", "on")) if kind is bool \
                else kind(value)
        except ValueError:
            raise UserError(f"--set {item!r}: {value!r} is not a {kind.__name__}") from None
    return out


@dataclass
class QualityPlan:
    """What one quality run trains and how it evaluates, unpacked from the command line."""

    models: list[str]
    modes: list[str]
    seeds: list[int]
    dataset: str = "mnist-5k"
    data_dir: str | None = None
    device: str = "cpu"
    epochs: int | None = None  # every variant's epochs (None: each tuned recipe's own)
    steps: int = 0  # a step budget for every variant (0: from the epochs)
    eval_every: int | None = None  # None: EVALS_PER_RUN evaluations per run
    eval_n: int = 2000
    kid_subsets: int = 100
    probe_train: int | None = None
    probe_test: int | None = None
    probe_epochs: int = 100
    overrides: dict = field(default_factory=dict)  # TrainConfig fields set for every run
    runs_dir: Path | None = None  # None: a temporary folder, removed at the end

    def check(self) -> None:
        """UserError naming the first setting out of range."""
        from gan_accel.errors import UserError

        if (self.epochs is not None and self.epochs < 1) or self.steps < 0:
            raise UserError(f"need --epochs >= 1 and --steps >= 0; got {self.epochs}, "
                            f"{self.steps}")
        if self.eval_every is not None and self.eval_every < 1:
            raise UserError(f"--eval-every must be >= 1, got {self.eval_every}")
        if self.eval_n < 10 or self.kid_subsets < 1:
            raise UserError("need --eval-n >= 10 and --kid-subsets >= 1")

    def budget(self) -> str:
        if self.steps:
            return f"{self.steps} steps"
        if self.epochs:
            return f"{self.epochs} epochs"
        return ("each tuned recipe's own epochs" if self.dataset == "mnist-5k"
                else "each tuned recipe's steps on the embedded subset")


def plan_from_args(args: argparse.Namespace) -> QualityPlan:
    """The command line's :class:`QualityPlan` (``--quick`` shrinks every size)."""
    from gan_accel.variants import VARIANTS

    from .common import parse_names

    quick = args.quick
    plan = QualityPlan(
        models=parse_names(args.models, list(VARIANTS),
                           ["dcgan"] if quick else list(VARIANTS), "--models"),
        modes=parse_names(args.modes, MODES, ["eager"], "--modes"),
        seeds=_seeds(args.seeds),
        dataset=args.dataset, data_dir=args.data_dir, device=args.device, epochs=args.epochs,
        steps=args.steps if args.steps is not None else (QUICK["steps"] if quick else 0),
        eval_every=args.eval_every,
        eval_n=args.eval_n or (QUICK["eval_n"] if quick else 2000),
        kid_subsets=args.kid_subsets or (QUICK["kid_subsets"] if quick else 100),
        probe_train=QUICK["probe_train"] if quick else None,
        probe_test=QUICK["probe_test"] if quick else None,
        probe_epochs=QUICK["probe_epochs"] if quick else 100,
        overrides=_overrides(args.set), runs_dir=args.runs_dir)
    plan.check()
    return plan


# --------------------------------------------------------------------------- one run
class QualityEvaluator:
    """What the trainer calls every ``eval_every`` steps: the EMA G's metrics against the
    real images (and InfoGAN's code accuracy), remembered with the step and the seconds."""

    def __init__(self, cfg):
        from gan_accel.evaluation import TrainingEvaluator

        self.inner = TrainingEvaluator(cfg, code_accuracy=True)
        self.evals: list[dict] = []

    def __call__(self, trainer) -> dict:
        result = self.inner(trainer)
        self.evals.append({"step": trainer.pos.step,
                           "train_seconds": round(trainer.train_seconds(), 2), **result})
        return result


def run_variant(model: str, mode: str, plan: QualityPlan, run_dir: Path,
                evaluator_factory=QualityEvaluator, seed: int = 0) -> tuple[dict, dict]:
    """Train and evaluate one variant in one mode: (table row, full evaluation dict)."""
    from gan_accel.evaluation import evaluate_variant, real_data_for_config
    from gan_accel.training.trainer import Trainer
    from gan_accel.variants import recipe_config

    extra = {"epochs": plan.epochs} if plan.epochs else {}
    steps = plan.steps or (0 if plan.epochs else tuned_steps(model, plan.dataset))
    cfg = recipe_config(model, max_steps=steps, dataset=plan.dataset, data_dir=plan.data_dir,
                        seed=seed, device=plan.device, out=str(run_dir), progress=False,
                        log_every=10_000, compile=mode == "compiled",
                        eval_samples=plan.eval_n, **{**extra, **plan.overrides})
    evaluator = evaluator_factory(cfg)
    trainer = Trainer(cfg, log=lambda *_: None, evaluator=evaluator)
    steps_per_epoch = trainer.loader.batches_per_epoch
    if plan.steps and not plan.epochs:  # --steps alone: the epochs those steps need
        trainer.cfg.epochs = -(-plan.steps // steps_per_epoch)
    cfg = trainer.cfg
    total = min(steps or cfg.epochs * steps_per_epoch, cfg.epochs * steps_per_epoch)
    cfg.eval_every = plan.eval_every or max(1, total // EVALS_PER_RUN)
    t0 = time.perf_counter()
    summary = trainer.fit()
    wall_s = time.perf_counter() - t0
    train_s = trainer.train_seconds()
    if not evaluator.evals or evaluator.evals[-1]["step"] != summary["steps"]:
        trainer._evaluate()  # the run's last step is always evaluated
    t0 = time.perf_counter()
    probe = {k: getattr(plan, k) for k in ("probe_train", "probe_test") if getattr(plan, k)}
    real = real_data_for_config(trainer.cfg, log=lambda *_: None, **probe)  # the run's images
    full = evaluate_variant(_sampling_variant(trainer), plan.dataset, plan.eval_n, real=real,
                            device=trainer.device, kid_subsets=plan.kid_subsets, seed=seed,
                            probe_epochs=plan.probe_epochs)
    eval_s = time.perf_counter() - t0
    row = {"model": model, "mode": mode, "seed": seed, "status": "ok", "steps": summary["steps"],
           "epochs_done": round(summary["steps"] / steps_per_epoch, 2),
           **{k: full.get(k) for k in ROW_KEYS}}
    row["targets"] = targets(model, row, plan.dataset)
    ttq = time_to_quality(model, evaluator.evals, plan.dataset)
    row["ttq"] = ttq
    row["ttq_all_s"] = ttq["all"]["seconds"] if ttq["all"] else None
    row["ttq_all_step"] = ttq["all"]["step"] if ttq["all"] else None
    row["train_s"], row["wall_s"], row["eval_s"] = round(train_s, 1), round(wall_s, 1), \
        round(eval_s, 1)
    row["compile_s"] = round(sum(summary["first_call_seconds"].values()), 1) \
        if mode == "compiled" else None
    row["curve"] = evaluator.evals
    return row, full


def tuned_steps(model: str, dataset: str) -> int:
    """The step budget of ``model``'s tuned recipe: on the embedded subset its epochs (0: all
    of them); on a larger dataset the same number of steps as those epochs of the subset, so a
    variant gets the same budget on every dataset."""
    from gan_accel.data import embedded_subset
    from gan_accel.variants import recipe_config

    if dataset == "mnist-5k":
        return 0
    cfg = recipe_config(model)
    return cfg.epochs * (len(embedded_subset()) // cfg.batch_size)


def _sampling_variant(trainer):
    """The trained variant with its sampling (EMA) generator in place of G, in eval mode."""
    import copy

    v = copy.deepcopy(trainer.variant)
    v.G.load_state_dict(trainer.sampling_generator().state_dict())
    return v.eval()


# --------------------------------------------------------------------------- the suite
def run(args: argparse.Namespace) -> dict:
    """The suite's entry from the bench command line: :func:`run_plan` of its options."""
    return run_plan(plan_from_args(args))


def run_plan(plan: QualityPlan, log=print) -> dict:
    """Train + evaluate each variant; returns ``{"config", "rows", "notes", "details"}``."""
    models, modes, seeds, overrides = plan.models, plan.modes, plan.seeds, plan.overrides
    tmp = None
    runs_dir = plan.runs_dir
    if runs_dir is None:
        tmp = tempfile.mkdtemp(prefix="gan-accel-quality-")
        runs_dir = Path(tmp)
    rows, details = [], {}
    try:
        for model, mode, seed in itertools.product(models, modes, seeds):
            name = model if mode == "eager" else f"{model}-{mode}"
            name += f"-seed{seed}" if len(seeds) > 1 else ""
            log(f"quality: {name}: training on {plan.dataset} ...", flush=True)
            try:
                row, full = run_variant(model, mode, plan, runs_dir / name, seed=seed)
            except Exception as exc:  # noqa: BLE001 - one variant failing must not end the run
                from gan_accel.errors import UserError

                if isinstance(exc, UserError) and len(models) * len(modes) * len(seeds) == 1:
                    raise
                traceback.print_exc()
                row, full = {"model": model, "mode": mode, "seed": seed,
                             "status": f"error: {exc}"[:200]}, {}
            rows.append(row)
            details[name] = full
            if row["status"] == "ok":
                ttq = row["ttq_all_s"]
                classes = ("" if row.get("classes_present") is None else
                           f"{row['classes_present']}/{row['num_classes']} classes, largest "
                           f"{row['largest_class_share']:.1%}, ")
                log(f"quality: {name}: FID {row['fid']:.2f} ({row['fid_ratio']:.1f}x "
                    f"floor, {row['feature_space']}), {classes}train {row['train_s']} s; "
                    f"targets {row['targets']}; all met at "
                    f"{'-' if ttq is None else f'{ttq} s'}", flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _cgan_vs_dcgan(rows)
    notes = [
        f"every variant trained with its tuned recipe ({plan.budget()}) on {plan.dataset}, "
        f"seeds {', '.join(map(str, seeds))}, modes {', '.join(modes)}; then {plan.eval_n} "
        f"generated images (the EMA generator) compared with {plan.eval_n} real ones in the "
        "feature space each row names (feature_space: the evaluation classifier's 128-d "
        "features, or random-cnn-seed0 for unlabelled data)",
        "fid_floor / kid_floor: the same metric between two disjoint real sets of that size "
        "(what a perfect generator would score); fid_ratio = fid / fid_floor",
        "classes / largest share: the evaluation classifier's predictions on generated images; "
        "cgan samples cycle through the labels, infogan samples through the categorical codes",
        "code_accuracy: infogan's Q head on held-out real images vs the true digits after "
        "Hungarian matching; code_accuracy_generated: the generating code vs the classifier",
        "spread (cgan, infogan): how much images drawn with one label or code differ in the "
        "feature space over how much real images of one class do (near 0: G ignores z)",
        "d_probe_accuracy: logistic regression on frozen D.features of real images",
        (f"targets: every variant but cgan 10 classes and largest share <= "
         f"{COVERAGE_SHARE:.0%}; FID / floor <= {FID_RATIO['dcgan']:.0f} for dcgan, <= "
         f"{FID_RATIO['began']:.0f} for began, <= {FID_RATIO_OTHERS:.0f} for the others; "
         f"cgan label accuracy >= {LABEL_ACCURACY:.0%} and FID no worse than dcgan's; "
         f"infogan code accuracy >= {CODE_ACCURACY:.0%} and G using its noise (not "
         "noise_ignored)")
        if plan.dataset in MNIST_LIKE else
        (f"targets: every variant but cgan every class present and no class's share above "
         f"{SHARE_RATIO}x its share in the real data (max_share_ratio, with its real-vs-real "
         f"floor); FID / floor reported; cgan label accuracy >= {LABEL_ACCURACY:.0%}; infogan "
         f"code accuracy >= {CODE_ACCURACY:.0%}"),
        "time to quality (ttq_all_s, ttq_all_step): the first evaluation at which every "
        "target held, in training seconds (evaluation time excluded) and steps; curve: "
        "every evaluation",
    ]
    if overrides:
        notes.append(f"recipe fields overridden for every variant: {overrides}")
    notes += seed_summaries(rows) if len(seeds) > 1 else []
    config = {k: (str(v) if isinstance(v, Path) else v)
              for k, v in dataclasses.asdict(plan).items()}
    return {"config": config, "rows": rows, "notes": notes, "details": details}


def _seeds(text: str) -> list[int]:
    from gan_accel.errors import UserError

    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds {text!r}: give distinct non-negative integers, e.g. 0,1,2")
    return seeds


SEED_METRICS = ("fid_ratio", "largest_class_share", "label_accuracy", "code_accuracy")


def seed_summaries(rows: list[dict]) -> list[str]:
    """One note per variant and mode run with several seeds: mean and worst of each metric."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("status") == "ok":
            groups.setdefault((r["model"], r["mode"]), []).append(r)
    notes = []
    for (model, mode), group in groups.items():
        parts = []
        for key in SEED_METRICS:
            values = [r[key] for r in group if r.get(key) is not None]
            if values:
                worst = max(values) if key in ("fid_ratio", "largest_class_share") else \
                    min(values)
                parts.append(f"{key} mean {sum(values) / len(values):.4g}, worst "
                             f"{worst:.4g}")
        met = sum(r["targets"] == "met" for r in group)
        notes.append(f"{model} ({mode}) over seeds {[r['seed'] for r in group]}: "
                     f"{'; '.join(parts)}; targets met in {met}/{len(group)}")
    return notes


def result_tag(args: argparse.Namespace) -> str:
    """The result file's suffix: the dataset unless it is the embedded subset, then --tag."""
    return "-".join(t for t in ("" if args.dataset == "mnist-5k" else args.dataset, args.tag)
                    if t)


def _cgan_vs_dcgan(rows: list[dict]) -> None:
    """cgan's second target: its FID no worse than dcgan's (same mode, same run)."""
    for r in rows:
        if r.get("model") != "cgan" or r.get("status") != "ok":
            continue
        ref = next((d for d in rows if d.get("model") == "dcgan" and d.get("mode") == r["mode"]
                    and d.get("seed") == r.get("seed") and d.get("status") == "ok"), None)
        if ref is not None and r["fid"] > ref["fid"]:
            extra = f"FID {r['fid']:.1f} > dcgan's {ref['fid']:.1f}"
            r["targets"] = (f"{r['targets']}; {extra}" if r["targets"].startswith("missed")
                            else f"missed: {extra}")


def main(argv: list[str] | None = None) -> int:
    """``python -m gan_accel.bench.quality``: run the suite and write its JSON + markdown."""
    import torch

    from gan_accel.devices import select_device
    from gan_accel.errors import OneLineParser

    from .common import Result, environment, write_result
    from .document import DEFAULT_OUT

    parser = OneLineParser(prog="python -m gan_accel.bench quality",
                           description="Sample quality and time-to-quality: train each variant "
                                       "with its tuned recipe, evaluating as it trains.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    env = environment(select_device(args.device), torch.get_num_threads())  # commit at start
    out = run_plan(plan_from_args(args))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(out["config"])
    result = Result("quality", config, out["rows"], out["notes"], tag=result_tag(args))
    write_result(result, env, args.out_dir or DEFAULT_OUT, args.quick)
    return 0 if all(r["status"] == "ok" for r in out["rows"]) else 1


if __name__ == "__main__":
    from gan_accel.errors import run_cli

    sys.exit(run_cli(main))
