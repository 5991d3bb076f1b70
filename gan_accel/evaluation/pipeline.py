"""The evaluation pipeline: how good is a generator, measured in a evaluation classifier's space.

Pieces, from the bottom up:

* :func:`load_eval_classifier` - the shipped CNN for a dataset
  (``gan_accel/assets/classifier-<mnist-5k|fashion-mnist>.safetensors``; full MNIST uses the
  mnist-5k one, same domain). :func:`train_eval_classifier` re-creates those files.
* :func:`load_real_data` - which real images a dataset is compared with (:class:`RealData`):
  the test split where one exists (Fashion-MNIST, full MNIST), else the training data (the
  embedded 5k subset, which is all a mnist-5k GAN was trained on); plus a labelled
  train/held-out pair for the discriminator probe and InfoGAN's code accuracy.
* :func:`build_real_features` - real classifier features at sample size ``n``, computed once:
  ``n`` real images and a disjoint second ``n`` for the real-data floor.
* :func:`evaluate_generator` - FID, KID, floor, class histogram (+ cGAN label accuracy,
  InfoGAN code accuracy on generated images) for any ``sample_fn`` (checkpoint or ONNX).
* :func:`discriminator_metrics` - the D linear probe and InfoGAN's Q-head code accuracy on
  real held-out images (needs a checkpoint, not an exported G).
* :func:`evaluate_variant` - both, for a loaded :class:`~gan_accel.variants.Variant`.
* :class:`TrainingEvaluator` - the cheap subset the trainer calls every ``eval_every`` steps.

Every random choice is drawn from an explicit, seeded generator: evaluating never touches the
global RNG, so a run with evaluations resumes exactly like one without.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..data import Dataset, ImageSet, dataset, embedded_subset, load_dataset, to_model_range
from ..errors import DataError, UserError
from ..ranges import OutputRange
from .classifier import (
    MnistClassifier,
    accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
)
from .metrics import (
    class_histogram,
    cluster_accuracy,
    extract_features,
    frechet_distance,
    kernel_inception_distance,
    label_accuracy,
    linear_probe,
)

__all__ = [
    "CLASSIFIER_DATASETS",
    "RealData",
    "RealFeatures",
    "SampleFn",
    "TrainingEvaluator",
    "build_real_features",
    "classifier_key",
    "classifier_path",
    "discriminator_metrics",
    "evaluate_generator",
    "evaluate_variant",
    "generator_sampler",
    "load_real_data",
    "load_eval_classifier",
    "predict_code",
    "train_eval_classifier",
]

CLASSIFIER_DATASETS = tuple(sorted({d.classifier.value for d in Dataset}))
ASSETS = Path(__file__).resolve().parents[1] / "assets"
MNIST5K_HOLDOUT = 1000  # images of the embedded subset the mnist-5k classifier never sees
SPLIT_SEED = 0  # seed of every stratified split made here
PROBE_TRAIN = 4000  # labelled real images the D probe is fitted on (at most)
PROBE_TEST = 1000  # held-out real images it (and InfoGAN's Q head) is scored on
KID_SUBSET = 1000  # rows per KID subset (fewer when n is smaller)
EVAL_SEED = 0  # the latent seed of every evaluation: successive evaluations see the same z


def _quiet(*_: Any) -> None:
    pass


# --------------------------------------------------------------------------- classifiers


def classifier_key(name: str) -> str:
    """The shipped classifier a dataset is measured with (full MNIST: the mnist-5k one)."""
    return dataset(name).classifier.value


def classifier_path(dataset: str) -> Path:
    """``gan_accel/assets/classifier-<key>.safetensors`` for ``dataset``."""
    return ASSETS / f"classifier-{classifier_key(dataset)}.safetensors"


def load_eval_classifier(dataset: str, device: str | torch.device = "cpu"
                              ) -> tuple[MnistClassifier, dict[str, str]]:
    """The evaluation classifier for ``dataset`` and its metadata, in eval mode.

    Raises:
        UserError: if the weights file is missing or corrupt (names the file and the command
            that re-creates it).
    """
    key = classifier_key(dataset)
    path = classifier_path(dataset)
    fix = f"re-create it with: python -m gan_accel.evaluate train-classifier --dataset {key}"
    if not path.is_file():
        raise UserError(f"evaluation classifier {path} is missing; {fix}")
    try:
        with torch.random.fork_rng(devices=[]):  # the module's init draws from the global RNG
            return load_classifier(path, map_location=device)
    except ValueError as exc:
        raise UserError(f"{exc}; {fix}") from None


def _stratified(data: ImageSet, n: int, seed: int = SPLIT_SEED) -> ImageSet:
    """A class-stratified subset of ``n`` images (all of ``data`` if it has no more)."""
    if n >= len(data):
        return data
    return data.split(n, seed)[1]


def train_eval_classifier(dataset: str, *, epochs: int, out: str | Path | None = None,
                               data_dir: str | None = None, train_subset: int = 0,
                               batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                               augment: bool = True, command: str = "",
                               log: Callable[[str], Any] = print) -> dict:
    """Train the evaluation classifier of ``dataset`` and save it with its metadata.

    mnist-5k: trains on the embedded subset minus 1,000 stratified held-out images
    (``ImageSet.split(1000, seed=0)``) and reports accuracy on those 1,000.
    fashion-mnist: trains on a stratified ``train_subset`` of the 60k train split (0: all) and
    reports accuracy on the 10k test split.

    Returns:
        the metadata written into the safetensors file (``heldout_accuracy`` among it).
    """
    key = classifier_key(dataset)
    if dataset != key:
        raise UserError(f"train-classifier takes --dataset {' or '.join(CLASSIFIER_DATASETS)}; "
                        f"{dataset} is evaluated with the {key} classifier")
    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    if key == "mnist-5k":
        train, test = embedded_subset().split(MNIST5K_HOLDOUT, SPLIT_SEED)
        train_desc = f"embedded MNIST subset minus {len(test)} stratified held-out images"
        test_desc = f"{len(test)} held-out images of the embedded subset (split seed 0)"
    else:
        full = load_dataset(key, data_dir, train=True, log=log)
        test = load_dataset(key, data_dir, train=False, log=log)
        train = _stratified(full, train_subset) if train_subset else full
        train_desc = (f"stratified {len(train)}-image subset of the {len(full)}-image train "
                      "split (to keep CPU training time short)" if len(train) < len(full)
                      else f"the {len(full)}-image train split")
        test_desc = f"the {len(test)}-image test split"
    out = Path(out) if out else classifier_path(key)
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist; create it or fix --out")
    log(f"training the {key} classifier on {train_desc}, {epochs} epochs")
    t0 = time.perf_counter()
    model = train_classifier(train.images, train.labels, epochs=epochs, batch_size=batch_size,
                             lr=lr, seed=seed, augment=augment, log=log)
    seconds = time.perf_counter() - t0
    acc = accuracy(model, test.images, test.labels)
    meta = {
        "dataset": key,
        "heldout_accuracy": f"{acc:.4f}",
        "heldout": test_desc,
        "heldout_n": len(test),
        "train": train_desc,
        "train_n": len(train),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "augment": "random shifts of up to 2 pixels" if augment else "none",
        "train_seconds": f"{seconds:.0f}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "command": command or f"python -m gan_accel.evaluate train-classifier --dataset {key} "
                              f"--epochs {epochs}",
    }
    save_classifier(model, out, meta)
    log(f"held-out accuracy {acc:.4f} on {test_desc}; wrote {out} ({seconds:.0f} s)")
    return {**meta, "path": str(out)}


# --------------------------------------------------------------------------- real data


@dataclass
class RealData:
    """The real images an evaluation uses (all uint8 ``[N, 28, 28]`` with labels).

    ``pool``: compared with generated images (FID/KID need ``2 n`` of them for the floor);
    ``probe_train`` / ``probe_test``: labelled, disjoint; the D probe is fitted on the first
    and scored on the second, which is also where InfoGAN's Q head is scored.
    """

    dataset: str
    pool: ImageSet
    probe_train: ImageSet
    probe_test: ImageSet
    pool_desc: str
    probe_desc: str

    def max_n(self) -> int:
        """The largest sample size with a real-data floor (two disjoint halves of the pool)."""
        return len(self.pool) // 2

    def check_n(self, n: int, flag: str = "--n") -> None:
        if n < 2 or n > self.max_n():
            raise UserError(f"{flag} {n} is out of range: the {self.dataset} evaluation needs "
                            f"2n real images ({self.pool_desc}: {len(self.pool)}); use "
                            f"2 <= {flag} <= {self.max_n()}")


def _train_and_test(name: str, data_dir: str | None, log) -> tuple[ImageSet, ImageSet | None]:
    """The train split and, where the files hold one, the test split."""
    train = load_dataset(name, data_dir, train=True, log=log)
    try:
        test = load_dataset(name, data_dir, train=False, log=_quiet)
    except DataError:
        test = None
    return train, test


def load_real_data(dataset: str, data_dir: str | None = None,
                   probe_train: int = PROBE_TRAIN, probe_test: int = PROBE_TEST,
                   log: Callable[[str], Any] = print) -> RealData:
    """The real images ``dataset`` is evaluated against (see :class:`RealData`).

    mnist-5k: pool = the whole embedded subset (the GAN's training data; it has no other
    split), probe = the classifier's 4,000 / 1,000 stratified split. Fashion-MNIST and full
    MNIST: pool = the test split, probe = stratified subsets of the train / test splits.
    """
    classifier_key(dataset)
    train, test = ((embedded_subset(), None) if dataset == "mnist-5k"
                   else _train_and_test(dataset, data_dir, log))
    if train.name == "mnist-5k":
        rest, held = train.split(MNIST5K_HOLDOUT, SPLIT_SEED)
        return RealData("mnist-5k", train, _stratified(rest, probe_train),
                        _stratified(held, probe_test), "the embedded 5,000-image subset "
                        "(the training data)", "embedded subset: 4,000 train / 1,000 held out")
    if test is None:
        rest, held = train.split(probe_test, SPLIT_SEED)
        return RealData(dataset, train, _stratified(rest, probe_train), held,
                        f"the {dataset} training data (no test split found)",
                        f"{dataset} train split, disjoint stratified subsets")
    return RealData(dataset, test, _stratified(train, probe_train),
                    _stratified(test, probe_test), f"the {dataset} test split",
                    f"{dataset}: train-split subset / test-split subset")


# --------------------------------------------------------------------------- real features


@dataclass
class RealFeatures:
    """Real classifier features at sample size ``n``, computed once per evaluation setup."""

    n: int
    feats: Tensor  # [n, 128] compared with the generated features
    fid_floor: float  # FID between feats and a disjoint second n real images
    kid_floor: float
    kid_subsets: int
    kid_subset_size: int
    source: str
    classifier: MnistClassifier
    classifier_meta: dict[str, str]


def build_real_features(classifier: MnistClassifier, classifier_meta: dict[str, str],
                    real: RealData, n: int, kid_subsets: int = 100,
                    seed: int = EVAL_SEED) -> RealFeatures:
    """Features of ``n`` random pool images, plus the floor against ``n`` other ones."""
    real.check_n(n)
    perm = torch.randperm(len(real.pool), generator=torch.Generator().manual_seed(seed))
    feats, _ = extract_features(classifier, real.pool.images[perm[: 2 * n]])
    ref, other = feats[:n], feats[n:]
    subset = min(KID_SUBSET, n)
    kid_floor, _ = kernel_inception_distance(ref, other, kid_subsets, subset, seed)
    return RealFeatures(n, ref, frechet_distance(ref, other), kid_floor, kid_subsets, subset,
                     real.pool_desc, classifier, classifier_meta)


# --------------------------------------------------------------------------- generators


class SampleFn(Protocol):
    """``sample_fn(n, seed=, classes=)`` -> ``[n, 1, 28, 28]`` images in the G's output range.

    ``classes`` ([n] int64 or None) is the label of a conditional G (cGAN) or the categorical
    code of an InfoGAN G; the rest of the latent is drawn from ``seed``.
    """

    def __call__(self, n: int, *, seed: int, classes: Tensor | None = None) -> Tensor: ...


def generator_sampler(G: nn.Module, latent, device: str | torch.device = "cpu",
                      batch_size: int = 500) -> SampleFn:
    """A :class:`SampleFn` for a PyTorch generator ``G(**latent)`` and its ``LatentSpec``.

    Samples in eval mode (BatchNorm running statistics) without gradients and puts ``G``
    back into its previous mode; latents are drawn on the CPU from a seeded generator.
    """

    def sample(n: int, *, seed: int, classes: Tensor | None = None) -> Tensor:
        gen = torch.Generator().manual_seed(seed)
        was_training = G.training
        G.eval()
        out = []
        try:
            with torch.no_grad():
                for i in range(0, n, batch_size):
                    b = min(batch_size, n - i)
                    kw = {}
                    if classes is not None:
                        part = classes[i: i + b]
                        kw = latent.class_kwargs(part)
                    lat = latent.sample(b, "cpu", gen, **kw)
                    out.append(G(**{k: v.to(device) for k, v in lat.items()}).float().cpu())
        finally:
            G.train(was_training)
        return torch.cat(out)

    return sample


def _class_count(num_classes: int, cat_dim: int) -> int:
    return num_classes or cat_dim


def evaluate_generator(sample_fn: SampleFn, output_range: str, *, num_classes: int = 0,
                       cat_dim: int = 0, dataset: str = "mnist-5k", n: int = 2000,
                       real_features: RealFeatures | None = None, data_dir: str | None = None,
                       kid_subsets: int = 100, seed: int = EVAL_SEED,
                       device: str | torch.device = "cpu",
                       log: Callable[[str], Any] = _quiet) -> dict[str, Any]:
    """Sample ``n`` images and measure them against real data in the classifier's space.

    Args:
        sample_fn: see :class:`SampleFn`.
        output_range: ``"unit"`` ([0, 1]) or ``"symmetric"`` ([-1, 1]) generator outputs.
        num_classes: > 0 for a label-conditioned G (cGAN): labels cycle through the classes
            and ``label_accuracy`` is reported.
        cat_dim: > 0 for an InfoGAN G: categorical codes cycle through ``0..cat_dim-1`` and
            ``code_accuracy_generated`` (codes vs classifier labels, Hungarian-matched) is
            reported.
        dataset: picks the evaluation classifier and real data (ignored with ``real_features``).
        n: generated images, compared with ``n`` real ones; the floor uses another ``n``.
        real_features: precomputed :func:`build_real_features` result (its ``n`` wins).
        kid_subsets: KID subsets (of ``min(n, 1000)`` rows each).
        seed: latent seed.
        device: where the classifier runs when ``real_features`` is not given.

    Returns:
        a flat JSON-ready dict: ``fid``, ``kid``, ``kid_std``, ``fid_floor``, ``kid_floor``,
        ``fid_ratio`` (fid / floor), class-histogram fields (``classes_present``,
        ``largest_class_share``, ``kl_to_uniform``, ``collapsed``, ``class_counts``,
        ``missing_classes``), and the conditional accuracies above when they apply.
    """
    if real_features is None:
        clf, meta = load_eval_classifier(dataset, device)
        real = load_real_data(dataset, data_dir, log=log)
        real_features = build_real_features(clf, meta, real, n, kid_subsets, seed)
    n = real_features.n
    k = _class_count(num_classes, cat_dim)
    classes = torch.arange(n) % k if k else None
    images = sample_fn(n, seed=seed, classes=classes)
    if tuple(images.shape) != (n, 1, 28, 28):
        raise UserError(f"the generator returned images of shape {tuple(images.shape)}, "
                        f"expected ({n}, 1, 28, 28)")
    if not bool(torch.isfinite(images).all()):
        raise UserError("the generator produced non-finite (NaN/inf) pixels; the model has "
                        "diverged, evaluate an earlier or the --best checkpoint")
    unit = OutputRange(output_range).to_unit(images.float())
    feats, preds = extract_features(real_features.classifier, unit)
    kid, kid_std = kernel_inception_distance(real_features.feats, feats, real_features.kid_subsets,
                                             real_features.kid_subset_size, seed)
    fid = frechet_distance(real_features.feats, feats)
    hist = class_histogram(preds)
    result: dict[str, Any] = {
        "n": n,
        "fid": fid,
        "fid_floor": real_features.fid_floor,
        "fid_ratio": fid / real_features.fid_floor if real_features.fid_floor > 0 else math.inf,
        "kid": kid,
        "kid_std": kid_std,
        "kid_floor": real_features.kid_floor,
        "classes_present": hist["classes_present"],
        "largest_class_share": hist["largest_class_share"],
        "kl_to_uniform": hist["kl_to_uniform"],
        "collapsed": hist["collapsed"],
        "class_counts": hist["counts"],
        "missing_classes": hist["missing_classes"],
    }
    if num_classes:
        result["label_accuracy"] = label_accuracy(preds, classes)
    elif cat_dim:
        acc, mapping = cluster_accuracy(classes, preds, num_classes=10, num_clusters=cat_dim)
        result["code_accuracy_generated"] = acc
        result["code_to_class_generated"] = [mapping.get(c) for c in range(cat_dim)]
    return result


# --------------------------------------------------------------------------- discriminator


def predict_code(variant, x: Tensor) -> Tensor | None:
    """InfoGAN's categorical-code logits ``[B, cat_dim]`` for images ``x`` in the model range.

    Uses ``variant.predict_code(x)`` when the variant defines it, else the Q head of
    ``variant.D.heads(x).cat_logits``; ``None`` for variants without a categorical code.
    """
    if not variant.latent.cat_dim:
        return None
    if hasattr(variant, "predict_code"):
        return variant.predict_code(x)
    return variant.D.heads(x).cat_logits


def _d_outputs(variant, images_u8: Tensor, device, batch_size: int = 500
               ) -> tuple[Tensor, Tensor | None]:
    """Frozen D features ``[N, F]`` (and InfoGAN code logits) of real uint8 images."""
    D = variant.D
    was_training = D.training
    D.eval()
    feats, codes = [], []
    try:
        with torch.no_grad():
            for i in range(0, images_u8.shape[0], batch_size):
                x = to_model_range(images_u8[i: i + batch_size], variant.output_range)
                x = x.to(device)
                # cGAN: D.features(x, label) - a constant label, so no class leaks to the probe
                label = (torch.zeros(x.shape[0], dtype=torch.long, device=device)
                         if variant.latent.num_classes else None)
                feats.append(variant.critic_features(x, label).flatten(1).double().cpu())
                logits = predict_code(variant, x)
                if logits is not None:
                    codes.append(logits.argmax(1).cpu())
    finally:
        D.train(was_training)
    return torch.cat(feats), (torch.cat(codes) if codes else None)


def discriminator_metrics(variant, real: RealData, device: str | torch.device = "cpu",
                          probe: bool = True, probe_epochs: int = 100,
                          seed: int = EVAL_SEED) -> dict[str, Any]:
    """D as a feature extractor, and InfoGAN's Q head as an unsupervised digit classifier.

    ``d_probe_accuracy``: multinomial logistic regression on frozen ``D.features`` of real
    images (fitted on ``real.probe_train``, scored on ``real.probe_test``; cGAN's D gets the
    constant label 0). ``code_accuracy`` (InfoGAN): Q's argmax on ``real.probe_test`` vs the
    true labels after Hungarian matching of codes to digits.
    """
    result: dict[str, Any] = {}
    test_f, test_code = _d_outputs(variant, real.probe_test.images, device)
    if test_code is not None:
        acc, mapping = cluster_accuracy(test_code, real.probe_test.labels, num_classes=10,
                                        num_clusters=variant.latent.cat_dim)
        result["code_accuracy"] = acc
        result["code_to_class"] = [mapping.get(c) for c in range(variant.latent.cat_dim)]
        result["code_accuracy_n"] = len(real.probe_test)
    if probe:
        train_f, _ = _d_outputs(variant, real.probe_train.images, device)
        result["d_probe_accuracy"] = linear_probe(
            train_f, real.probe_train.labels, test_f, real.probe_test.labels,
            epochs=probe_epochs, seed=seed, num_classes=10)
        result["d_probe_train_n"] = len(real.probe_train)
        result["d_probe_test_n"] = len(real.probe_test)
        result["d_feature_dim"] = int(train_f.shape[1])
    return result


def evaluate_variant(variant, dataset: str, n: int = 2000, *, data_dir: str | None = None,
                     device: str | torch.device = "cpu", kid_subsets: int = 100,
                     probe: bool = True, probe_train: int = PROBE_TRAIN,
                     probe_test: int = PROBE_TEST, probe_epochs: int = 100,
                     seed: int = EVAL_SEED, log: Callable[[str], Any] = _quiet
                     ) -> dict[str, Any]:
    """Every metric for a trained variant: :func:`evaluate_generator` + D/Q metrics.

    ``probe_train`` / ``probe_test`` cap the labelled real images of the D probe (and of
    InfoGAN's code accuracy); ``probe=False`` skips the probe.
    """
    clf, meta = load_eval_classifier(dataset, device)
    real = load_real_data(dataset, data_dir, probe_train, probe_test, log=log)
    real_features = build_real_features(clf, meta, real, n, kid_subsets, seed)
    spec = variant.latent
    result = {
        "variant": variant.name,
        "dataset": dataset,
        **describe_real_features(real_features, real, seed),
        **evaluate_generator(generator_sampler(variant.G, spec, device), variant.output_range,
                             num_classes=spec.num_classes, cat_dim=spec.cat_dim,
                             real_features=real_features, seed=seed),
        **discriminator_metrics(variant, real, device, probe=probe,
                                probe_epochs=probe_epochs, seed=seed),
    }
    return result


def describe_real_features(real_features: RealFeatures, real: RealData,
                       seed: int = EVAL_SEED) -> dict[str, Any]:
    """JSON facts saying what the numbers were measured against."""
    meta = real_features.classifier_meta
    return {
        "real_images": real_features.source,
        "probe_images": real.probe_desc,
        "classifier": meta.get("dataset", "?"),
        "classifier_heldout_accuracy": float(meta.get("heldout_accuracy", "nan")),
        "kid_subsets": real_features.kid_subsets,
        "kid_subset_size": real_features.kid_subset_size,
        "seed": seed,
    }


# --------------------------------------------------------------------------- during training


class TrainingEvaluator:
    """``evaluator(trainer) -> {"fid", "kid", "classes_present", "largest_class_share", ...}``.

    Built by ``gan_accel.train`` when ``--eval-every N`` is set. Uses ``cfg.eval_samples``
    generated images (the EMA G when the run keeps one) against as many real ones; the real
    features and floor are computed on the first call and reused. Fixed latent seed, so
    successive evaluations differ only by the weights. Adds ``fid_floor`` and, for cGAN /
    InfoGAN, ``label_accuracy`` / ``code_accuracy_generated``; with ``code_accuracy=True``
    also InfoGAN's Q-head ``code_accuracy`` on held-out real digits.
    """

    def __init__(self, cfg, kid_subsets: int = 20, log: Callable[[str], Any] = _quiet,
                 code_accuracy: bool = False):
        self.cfg, self.kid_subsets, self.log = cfg, kid_subsets, log
        self.code_accuracy = code_accuracy
        self.real = load_real_data(cfg.dataset, cfg.data_dir, probe_train=0,
                                   probe_test=PROBE_TEST if code_accuracy else 0, log=log)
        self.real.check_n(cfg.eval_samples, "--eval-samples")
        self.real_features: RealFeatures | None = None

    def _real_features(self, device) -> RealFeatures:
        if self.real_features is None:
            clf, meta = load_eval_classifier(self.cfg.dataset, device)
            self.real_features = build_real_features(clf, meta, self.real, self.cfg.eval_samples,
                                             self.kid_subsets)
        return self.real_features

    def __call__(self, trainer) -> dict[str, Any]:
        ref = self._real_features(trainer.device)
        variant = trainer.variant
        G = trainer.sampling_generator()
        spec = variant.latent
        res = evaluate_generator(generator_sampler(G, spec, trainer.device),
                                 variant.output_range, num_classes=spec.num_classes,
                                 cat_dim=spec.cat_dim, real_features=ref)
        keys = ("fid", "kid", "classes_present", "largest_class_share", "fid_floor",
                "fid_ratio", "label_accuracy", "code_accuracy_generated")
        out = {k: res[k] for k in keys if k in res}
        if self.code_accuracy and spec.cat_dim:  # InfoGAN's Q head on held-out real digits
            out.update(discriminator_metrics(variant, self.real, trainer.device, probe=False))
        return out


# --------------------------------------------------------------------------- reporting


ROWS = (  # key, label, format
    ("fid", "FID", "{:.3f}"),
    ("fid_floor", "  real-data floor", "{:.3f}"),
    ("fid_ratio", "  FID / floor", "{:.2f}x"),
    ("kid", "KID", "{:.5f}"),
    ("kid_floor", "  real-data floor", "{:.5f}"),
    ("classes_present", "classes present", "{}/10"),
    ("largest_class_share", "largest class share", "{:.1%}"),
    ("kl_to_uniform", "KL to uniform (nats)", "{:.4f}"),
    ("collapsed", "mode collapse flagged", "{}"),
    ("label_accuracy", "label accuracy (cGAN)", "{:.2%}"),
    ("code_accuracy", "code accuracy, Q on real (InfoGAN)", "{:.2%}"),
    ("code_accuracy_generated", "code accuracy, generated (InfoGAN)", "{:.2%}"),
    ("d_probe_accuracy", "D linear probe accuracy", "{:.2%}"),
)


def format_table(result: dict[str, Any]) -> str:
    """A two-column text table of the headline metrics present in ``result``."""
    lines = []
    width = max(len(label) for _, label, _ in ROWS)
    for key, label, fmt in ROWS:
        if key in result and result[key] is not None:
            lines.append(f"{label:<{width}}  {fmt.format(result[key])}")
    return "\n".join(lines)

