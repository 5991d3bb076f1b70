"""The evaluation pipeline: how good is a generator, measured in a named feature space.

Pieces, from the bottom up:

* :func:`load_real_data` / :func:`real_data_from_images` - which real images a dataset is
  compared with (:class:`RealData`): MNIST-like data as before (the test split where one
  exists, else the embedded subset), any other set (a folder, emoji) as a whole, with its
  stratified 80/20 classifier split when it is labelled;
* :func:`feature_space_for` - the space the numbers are measured in
  (:class:`~.feature_space.FeatureSpace`): the shipped classifier of MNIST / Fashion-MNIST,
  the classifier trained on a labelled folder's own split (:mod:`.data_classifier`), or for
  unlabelled data the fixed ``random-cnn-seed0``; :func:`load_eval_classifier` and
  :func:`train_eval_classifier` are the shipped classifiers' load and re-creation;
* :func:`build_real_features` - real features at sample size ``n``, computed once: ``n``
  real images and a disjoint second ``n`` for every metric's real-vs-real floor;
* :func:`evaluate_generator` - FID, KID, precision/recall (Kynkaanniemi et al. 2019),
  density/coverage (Naeem et al. 2020), each with its floor, class coverage against the real
  data's shares (+ cGAN label accuracy, InfoGAN code accuracy on generated images), and
  Inception FID when local weights are given;
* :func:`discriminator_metrics` - the D linear probe and InfoGAN's Q-head code accuracy on
  real held-out images (labelled data; needs a checkpoint, not an exported G);
* :func:`evaluate_variant` - both, for a loaded :class:`~gan_accel.variants.Variant`;
* :class:`TrainingEvaluator` - the cheap subset the trainer calls every ``eval_every`` steps.

Every result names its feature space (``feature_space``). Every random choice is drawn from
an explicit, seeded generator: evaluating never touches the global RNG, so a run with
evaluations resumes exactly like one without.
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
    ImageClassifier,
    accuracy,
    class_names_of,
    load_classifier,
    save_classifier,
    train_classifier,
)
from .data_classifier import (
    class_names,
    is_labelled,
    load_data_classifier,
    stratified_split,
    train_data_classifier,
)
from .feature_space import FeatureSpace, SpaceChoice, SpaceKind, random_cnn_space
from .inception import InceptionFID
from .metrics import (
    class_coverage,
    class_histogram,
    cluster_accuracy,
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    label_accuracy,
    linear_probe,
    precision_recall,
    within_group_spread,
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
    "feature_space_for",
    "generator_sampler",
    "load_real_data",
    "load_eval_classifier",
    "predict_code",
    "real_data_from_images",
    "train_eval_classifier",
]

# the datasets whose evaluation classifier ships with the package, and which one each uses
SHIPPED_CLASSIFIER = {Dataset.MNIST_5K: Dataset.MNIST_5K, Dataset.MNIST: Dataset.MNIST_5K,
                      Dataset.FASHION_MNIST: Dataset.FASHION_MNIST}
CLASSIFIER_DATASETS = tuple(sorted({d.value for d in SHIPPED_CLASSIFIER.values()}))
ASSETS = Path(__file__).resolve().parents[1] / "assets"
MNIST5K_HOLDOUT = 1000  # images of the embedded subset the mnist-5k classifier never sees
SPLIT_SEED = 0  # seed of every stratified split made here
PROBE_TRAIN = 4000  # labelled real images the D probe is fitted on (at most)
PROBE_TEST = 1000  # held-out real images it (and InfoGAN's Q head) is scored on
KID_SUBSET = 1000  # rows per KID subset (fewer when n is smaller)
EVAL_SEED = 0  # the latent seed of every evaluation: successive evaluations see the same z
# below this spread_ratio G draws one image per label / code whatever its noise: InfoGAN runs
# here measured 0.006 when G ignored z and 0.42-1.35 when it did not (docs/recipes.md)
NOISE_IGNORED_SPREAD = 0.2


def _quiet(*_: Any) -> None:
    pass


# --------------------------------------------------------------------------- shipped classifiers


def has_shipped_classifier(name: str) -> bool:
    """Whether ``name`` is measured by a classifier shipped in the package."""
    return dataset(name) in SHIPPED_CLASSIFIER


def classifier_key(name: str) -> str:
    """The shipped classifier a dataset is measured with (full MNIST: the mnist-5k one).

    Raises:
        UserError: for a dataset without one (a folder, emoji: their classifier is trained
            on their own split, :mod:`.data_classifier`).
    """
    ds = dataset(name)
    if ds not in SHIPPED_CLASSIFIER:
        raise UserError(f"{name} has no shipped evaluation classifier (those are "
                        f"{', '.join(CLASSIFIER_DATASETS)}); its classifier is trained on its "
                        f"own split: python -m gan_accel.evaluate train-classifier --dataset "
                        f"{name}")
    return SHIPPED_CLASSIFIER[ds].value


def classifier_path(dataset: str) -> Path:
    """``gan_accel/assets/classifier-<key>.safetensors`` for ``dataset``."""
    return ASSETS / f"classifier-{classifier_key(dataset)}.safetensors"


def load_eval_classifier(dataset: str, device: str | torch.device = "cpu"
                         ) -> tuple[ImageClassifier, dict[str, str]]:
    """The shipped evaluation classifier for ``dataset`` and its metadata, in eval mode.

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
    """Train the shipped evaluation classifier of ``dataset`` and save it with its metadata.

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


def train_data_classifier_for(dataset: str, data_dir: str | None, *, resolution: int = 0,
                              channels: int = 0, background: float | None = None,
                              epochs: int = 0, batch_size: int = 64, lr: float = 2e-3,
                              seed: int = 0, augment: bool = True, command: str = "",
                              log: Callable[[str], Any] = print) -> dict:
    """Train a labelled dataset's own evaluation classifier ahead of time (a folder, emoji),
    at the image shape its runs use, and cache it beside the dataset cache.

    Returns:
        the metadata written into the classifier file (``heldout_accuracy``, ``path``).
    """
    data = load_dataset(dataset, data_dir, train=True, log=log,
                        **_shape_kwargs(resolution, channels, background))
    if data.cache_dir is None:
        raise UserError(f"{dataset} has no dataset cache to keep its classifier beside")
    _, meta = train_data_classifier(data, data.cache_dir, epochs=epochs,
                                    batch_size=batch_size, lr=lr, seed=seed, augment=augment,
                                    command=command, log=log)
    return meta


# --------------------------------------------------------------------------- real data


@dataclass
class RealData:
    """The real images an evaluation uses (uint8 ``[N, C, R, R]``, with labels if any).

    ``pool``: compared with generated images (FID and the rest need ``2 n`` of them for the
    floors); ``probe_train`` / ``probe_test``: labelled, disjoint (None for unlabelled data);
    the D probe is fitted on the first and scored on the second, which is also where
    InfoGAN's Q head is scored. ``shipped``: the dataset whose shipped classifier measures
    these images (None: a classifier trained on the data itself, cached in ``cache_dir``).
    """

    dataset: str
    pool: ImageSet
    probe_train: ImageSet | None
    probe_test: ImageSet | None
    pool_desc: str
    probe_desc: str
    shipped: str | None = None
    cache_dir: Path | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = (int(s) for s in self.pool.images.shape[1:])
        return (c, h, w)

    @property
    def labelled(self) -> bool:
        return is_labelled(self.pool)

    @property
    def num_classes(self) -> int:
        """Classes of the data (0: unlabelled)."""
        return self.pool.num_classes if self.labelled else 0

    def max_n(self) -> int:
        """The largest sample size with a real-data floor (two disjoint halves of the pool)."""
        return len(self.pool) // 2

    def check_n(self, n: int, flag: str = "--n") -> None:
        if n < 2 or n > self.max_n():
            raise UserError(f"{flag} {n} is out of range: the {self.dataset} evaluation needs "
                            f"2n real images ({self.pool_desc}: {len(self.pool)}); use "
                            f"2 <= {flag} <= {self.max_n()}")


def _shape_kwargs(resolution: int, channels: int, background: float | None) -> dict:
    """The image-shape arguments of ``load_dataset`` that differ from the dataset's own."""
    out: dict[str, Any] = {}
    if resolution:
        out["resolution"] = resolution
    if channels:
        out["channels"] = channels
    if background is not None:
        out["background"] = background
    return out


def load_real_data(dataset: str, data_dir: str | None = None,
                   probe_train: int = PROBE_TRAIN, probe_test: int = PROBE_TEST,
                   log: Callable[[str], Any] = print, *, resolution: int = 0,
                   channels: int = 0, background: float | None = None) -> RealData:
    """The real images ``dataset`` is evaluated against (see :class:`RealData`).

    mnist-5k: pool = the whole embedded subset (the GAN's training data; it has no other
    split), probe = the classifier's 4,000 / 1,000 stratified split. Fashion-MNIST and full
    MNIST: pool = the test split, probe = stratified subsets of the train / test splits.
    Any other dataset (a folder, emoji): :func:`real_data_from_images` of the whole set.
    ``resolution`` / ``channels`` / ``background``: the run's images (0 / None: the
    dataset's own), as ``gan_accel.data.load_dataset`` takes them.
    """
    shape = _shape_kwargs(resolution, channels, background)
    if not has_shipped_classifier(dataset):
        data = load_dataset(dataset, data_dir, train=True, log=log, **shape)
        return real_data_from_images(data, data.cache_dir, probe_train, probe_test,
                                     dataset=str(data.name))
    key = classifier_key(dataset)
    if dataset == "mnist-5k":
        train, test = load_dataset("mnist-5k", log=log, **shape), None
    else:
        train = load_dataset(dataset, data_dir, train=True, log=log, **shape)
        try:
            test = load_dataset(dataset, data_dir, train=False, log=_quiet, **shape)
        except DataError:
            test = None
    if train.name == "mnist-5k":
        rest, held = train.split(MNIST5K_HOLDOUT, SPLIT_SEED)
        return RealData("mnist-5k", train, _stratified(rest, probe_train),
                        _stratified(held, probe_test), "the embedded 5,000-image subset "
                        "(the training data)", "embedded subset: 4,000 train / 1,000 held out",
                        shipped=key)
    if test is None:
        rest, held = train.split(probe_test, SPLIT_SEED)
        return RealData(dataset, train, _stratified(rest, probe_train), held,
                        f"the {dataset} training data (no test split found)",
                        f"{dataset} train split, disjoint stratified subsets", shipped=key)
    return RealData(dataset, test, _stratified(train, probe_train),
                    _stratified(test, probe_test), f"the {dataset} test split",
                    f"{dataset}: train-split subset / test-split subset", shipped=key)


def _first_per_class(data: ImageSet, n: int) -> ImageSet:
    """At most ``n`` images, every class in its share (deterministic, seed 0)."""
    if n >= len(data):
        return data
    return stratified_split(data, 1.0 - n / len(data), SPLIT_SEED)[0]


def real_data_from_images(data: ImageSet, cache_dir: str | Path | None,
                          probe_train: int = PROBE_TRAIN, probe_test: int = PROBE_TEST,
                          dataset: str | None = None) -> RealData:
    """:class:`RealData` for a set without a test split (a folder, emoji, a test's images).

    pool = the whole set (the GAN's training data). Labelled (two or more classes): the
    classifier trained on the set's stratified 80% measures it, cached in ``cache_dir``, and
    the probe uses that split (fitted on the 80%, scored on the held-out 20%). Unlabelled:
    no probe; measured in ``random-cnn-seed0``.
    """
    name = dataset or data.name
    if not is_labelled(data):
        return RealData(name, data, None, None, f"the {len(data):,} images of {data.source}",
                        "unlabelled: no probe", None, None if cache_dir is None
                        else Path(cache_dir))
    train, held = stratified_split(data)
    return RealData(name, data, _first_per_class(train, probe_train),
                    _first_per_class(held, probe_test),
                    f"the {len(data):,} images of {data.source}",
                    f"{name}: the evaluation classifier's training split / its held-out "
                    f"{len(held)} images", None, None if cache_dir is None else Path(cache_dir))


# --------------------------------------------------------------------------- feature spaces


def feature_space_for(real: RealData, choice: str | SpaceChoice = SpaceChoice.AUTO,
                      device: str | torch.device = "cpu",
                      log: Callable[[str], Any] = print) -> FeatureSpace:
    """The feature space ``real`` is measured in.

    ``auto``: labelled data in its classifier's space (the shipped one, or the one trained on
    the data's split: trained now, with a line saying so, if the cache has none); unlabelled
    data in ``random-cnn-seed0``. ``classifier`` / ``random-cnn`` ask for one of them.

    Raises:
        UserError: ``classifier`` for unlabelled data.
    """
    choice = SpaceChoice(choice)
    if choice is SpaceChoice.AUTO:
        choice = SpaceChoice.CLASSIFIER if real.labelled else SpaceChoice.RANDOM_CNN
    if choice is SpaceChoice.RANDOM_CNN:
        return random_cnn_space(real.image_shape, device=device)
    if not real.labelled:
        raise UserError(f"{real.dataset} has no labels (no class subfolders), so it has no "
                        "evaluation classifier; use --feature-space random-cnn (or auto)")
    if real.shipped is not None:
        clf, meta = load_eval_classifier(real.shipped, device)
        name = f"classifier-{real.shipped}"
    else:
        if real.cache_dir is None:
            raise UserError(f"{real.dataset}: no cache folder for its evaluation classifier")
        clf, meta = load_data_classifier(real.pool, real.cache_dir, device=device, log=log)
        name = f"classifier-{real.dataset}-{meta['digest'][:8]}"
    names = class_names_of(meta, clf.num_classes)
    if real.shipped is None:
        names = class_names(real.pool)
    return FeatureSpace(name, SpaceKind.CLASSIFIER, clf, real.image_shape, clf.image_shape,
                        names, meta)


# --------------------------------------------------------------------------- real features


@dataclass
class RealFeatures:
    """Real features at sample size ``n`` and every metric's real-vs-real floor (computed
    between ``n`` real images and a disjoint second ``n``), once per evaluation setup."""

    n: int
    feats: Tensor  # [n, F] compared with the generated features
    preds: Tensor | None  # [n] the classifier's classes of those images (None: no classes)
    floors: dict[str, float]  # fid, kid, precision, recall, density, coverage, max_share_ratio
    kid_subsets: int
    kid_subset_size: int
    source: str
    space: FeatureSpace
    pool: ImageSet  # the real images, and which of them were drawn (for Inception FID)
    index: Tensor  # [2n]: the first n are ``feats``, the second n the floor's other set

    @property
    def fid_floor(self) -> float:
        return self.floors["fid"]

    @property
    def kid_floor(self) -> float:
        return self.floors["kid"]

    @property
    def classifier(self) -> nn.Module:
        return self.space.net

    @property
    def classifier_meta(self) -> dict[str, str]:
        return self.space.meta

    def real_images(self) -> tuple[Tensor, Tensor]:
        """The two disjoint real image sets, uint8 ``[n, C, R, R]`` each."""
        return (self.pool.images[self.index[: self.n]],
                self.pool.images[self.index[self.n:]])


def _manifold_metrics(real: Tensor, fake: Tensor) -> dict[str, float]:
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def build_real_features(space: FeatureSpace, real: RealData, n: int, kid_subsets: int = 100,
                        seed: int = EVAL_SEED) -> RealFeatures:
    """Features of ``n`` random pool images, plus every floor against ``n`` other ones."""
    real.check_n(n)
    perm = torch.randperm(len(real.pool), generator=torch.Generator().manual_seed(seed))
    index = perm[: 2 * n]
    feats, preds = space.extract(real.pool.images[index])
    ref, other = feats[:n], feats[n:]
    subset = min(KID_SUBSET, n)
    kid_floor, _ = kernel_inception_distance(ref, other, kid_subsets, subset, seed)
    floors = {"fid": frechet_distance(ref, other), "kid": kid_floor,
              **_manifold_metrics(ref, other)}
    ref_preds = None
    if preds is not None:
        ref_preds = preds[:n]
        floors["max_share_ratio"] = class_coverage(preds[n:], ref_preds,
                                                   space.num_classes)["max_share_ratio"]
    return RealFeatures(n, ref, ref_preds, floors, kid_subsets, subset, real.pool_desc, space,
                        real.pool, index)


# --------------------------------------------------------------------------- generators


class SampleFn(Protocol):
    """``sample_fn(n, seed=, classes=)`` -> ``[n, C, R, R]`` images in the G's output range.

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


def _class_metrics(preds: Tensor, ref: RealFeatures, num_classes: int, cat_dim: int,
                   classes: Tensor | None) -> dict[str, Any]:
    """Coverage against the real shares, plus cGAN label / InfoGAN code accuracy."""
    k = ref.space.num_classes
    cov = class_coverage(preds, ref.preds, k)
    hist = class_histogram(preds, k)
    names = ref.space.class_names
    result: dict[str, Any] = {
        "classes_present": cov["classes_present"],
        "num_classes": cov["num_classes"],
        "real_classes": cov["real_classes"],
        "largest_class_share": cov["largest_class_share"],
        "max_share_ratio": cov["max_share_ratio"],
        "max_share_ratio_class": names[cov["max_share_ratio_class"]],
        "max_share_ratio_floor": ref.floors["max_share_ratio"],
        "kl_to_uniform": hist["kl_to_uniform"],
        "kl_to_real": cov["kl_to_real"],
        "collapsed": cov["collapsed"],
        "class_names": list(names),
        "class_counts": hist["counts"],
        "class_shares": cov["shares"],
        "real_class_shares": cov["real_shares"],
        "missing_classes": cov["missing_classes"],
    }
    if num_classes and classes is not None:
        result["label_accuracy"] = label_accuracy(preds, classes)
    elif cat_dim and classes is not None:
        acc, mapping = cluster_accuracy(classes, preds, num_classes=k, num_clusters=cat_dim)
        result["code_accuracy_generated"] = acc
        result["code_to_class_generated"] = [mapping.get(c) for c in range(cat_dim)]
    return result


def evaluate_generator(sample_fn: SampleFn, output_range: str, *, num_classes: int = 0,
                       cat_dim: int = 0, dataset: str = "mnist-5k", n: int = 2000,
                       real_features: RealFeatures | None = None, data_dir: str | None = None,
                       kid_subsets: int = 100, seed: int = EVAL_SEED,
                       device: str | torch.device = "cpu",
                       inception: InceptionFID | None = None,
                       log: Callable[[str], Any] = _quiet) -> dict[str, Any]:
    """Sample ``n`` images and measure them against real data in a feature space.

    Args:
        sample_fn: see :class:`SampleFn`.
        output_range: ``"unit"`` ([0, 1]) or ``"symmetric"`` ([-1, 1]) generator outputs.
        num_classes: > 0 for a label-conditioned G (cGAN): labels cycle through the classes
            and ``label_accuracy`` is reported (classifier spaces).
        cat_dim: > 0 for an InfoGAN G: categorical codes cycle through ``0..cat_dim-1`` and
            ``code_accuracy_generated`` (codes vs classifier labels, Hungarian-matched) is
            reported (classifier spaces).
        dataset: a dataset with a shipped classifier, measured in its space (ignored with
            ``real_features``; other data: build ``real_features`` with
            :func:`build_real_features`).
        n: generated images, compared with ``n`` real ones; the floors use another ``n``.
        real_features: precomputed :func:`build_real_features` result (its ``n`` wins).
        kid_subsets: KID subsets (of ``min(n, 1000)`` rows each).
        seed: latent seed.
        device: where the classifier runs when ``real_features`` is not given.
        inception: Inception FID from local weights (:class:`~.inception.InceptionFID`),
            reported as ``inception_fid`` with its own floor.

    Returns:
        a flat JSON-ready dict: ``feature_space`` (the space every number below is in),
        ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``, ``coverage``,
        each with its ``*_floor``, ``fid_ratio`` (fid / floor); in a classifier space the
        class coverage (``classes_present`` of ``num_classes``, ``largest_class_share``,
        ``max_share_ratio``: the largest generated share over that class's real share, with
        its class and floor, ``collapsed``, the shares) and the conditional accuracies above;
        for cGAN / InfoGAN also ``spread_ratio``: how much images of one label / code differ
        (:func:`~.metrics.within_group_spread` in the feature space) over how much real
        images of one class do, and ``noise_ignored`` (also flagged ``collapsed``) when it
        is below ``NOISE_IGNORED_SPREAD``: G draws one image per label / code.
    """
    if real_features is None:
        real = load_real_data(dataset, data_dir, log=log)
        space = feature_space_for(real, device=device, log=log)
        real_features = build_real_features(space, real, n, kid_subsets, seed)
    ref = real_features
    n = ref.n
    k = _class_count(num_classes, cat_dim)
    classes = torch.arange(n) % k if k else None
    images = sample_fn(n, seed=seed, classes=classes)
    expected = (n, *ref.space.image_shape)
    if tuple(images.shape) != expected:
        raise UserError(f"the generator returned images of shape {tuple(images.shape)}, "
                        f"expected {expected} (the real data's shape)")
    if not bool(torch.isfinite(images).all()):
        raise UserError("the generator produced non-finite (NaN/inf) pixels; the model has "
                        "diverged, evaluate an earlier or the --best checkpoint")
    unit = OutputRange(output_range).to_unit(images.float())
    feats, preds = ref.space.extract(unit)
    kid, kid_std = kernel_inception_distance(ref.feats, feats, ref.kid_subsets,
                                             ref.kid_subset_size, seed)
    fid = frechet_distance(ref.feats, feats)
    manifold = _manifold_metrics(ref.feats, feats)
    result: dict[str, Any] = {
        "n": n,
        **ref.space.describe(),
        "fid": fid,
        "fid_floor": ref.fid_floor,
        "fid_ratio": fid / ref.fid_floor if ref.fid_floor > 0 else math.inf,
        "kid": kid,
        "kid_std": kid_std,
        "kid_floor": ref.kid_floor,
    }
    for key, value in manifold.items():
        result[key] = value
        result[f"{key}_floor"] = ref.floors[key]
    if preds is not None:
        result.update(_class_metrics(preds, ref, num_classes, cat_dim, classes))
        if classes is not None:
            # images drawn with one label or code differ as much as real digits of one class
            # (1); a G that ignores its noise draws one image per code (0)
            result["spread_ratio"] = (within_group_spread(feats, classes)
                                      / within_group_spread(ref.feats, ref.preds))
            result["noise_ignored"] = result["spread_ratio"] < NOISE_IGNORED_SPREAD
            result["collapsed"] = result["collapsed"] or result["noise_ignored"]
    if inception is not None:
        result.update(inception.measure(*ref.real_images(), _unit_to_u8(unit)))
    return result


def _unit_to_u8(x: Tensor) -> Tensor:
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


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
    """D as a feature extractor, and InfoGAN's Q head as an unsupervised classifier.

    ``d_probe_accuracy``: multinomial logistic regression on frozen ``D.features`` of real
    images (fitted on ``real.probe_train``, scored on ``real.probe_test``; cGAN's D gets the
    constant label 0). ``code_accuracy`` (InfoGAN): Q's argmax on ``real.probe_test`` vs the
    true labels after Hungarian matching of codes to classes. Unlabelled data has neither.
    """
    result: dict[str, Any] = {}
    if real.probe_test is None or real.probe_train is None:
        return result
    k = real.num_classes
    test_f, test_code = _d_outputs(variant, real.probe_test.images, device)
    if test_code is not None:
        acc, mapping = cluster_accuracy(test_code, real.probe_test.labels, num_classes=k,
                                        num_clusters=variant.latent.cat_dim)
        result["code_accuracy"] = acc
        result["code_to_class"] = [mapping.get(c) for c in range(variant.latent.cat_dim)]
        result["code_accuracy_n"] = len(real.probe_test)
    if probe:
        train_f, _ = _d_outputs(variant, real.probe_train.images, device)
        result["d_probe_accuracy"] = linear_probe(
            train_f, real.probe_train.labels, test_f, real.probe_test.labels,
            epochs=probe_epochs, seed=seed, num_classes=k)
        result["d_probe_train_n"] = len(real.probe_train)
        result["d_probe_test_n"] = len(real.probe_test)
        result["d_feature_dim"] = int(train_f.shape[1])
    return result


def evaluate_variant(variant, dataset: str, n: int = 2000, *, data_dir: str | None = None,
                     device: str | torch.device = "cpu", kid_subsets: int = 100,
                     probe: bool = True, probe_train: int = PROBE_TRAIN,
                     probe_test: int = PROBE_TEST, probe_epochs: int = 100,
                     seed: int = EVAL_SEED, real: RealData | None = None,
                     feature_space: str | SpaceChoice = SpaceChoice.AUTO,
                     inception: InceptionFID | None = None,
                     log: Callable[[str], Any] = _quiet) -> dict[str, Any]:
    """Every metric for a trained variant: :func:`evaluate_generator` + D/Q metrics.

    ``real``: the real data (default: :func:`load_real_data` of ``dataset``, which needs a
    shipped classifier; folders pass theirs). ``probe_train`` / ``probe_test`` cap the
    labelled real images of the D probe (and of InfoGAN's code accuracy); ``probe=False``
    skips the probe. ``feature_space``: ``auto``, ``classifier`` or ``random-cnn``.
    """
    if real is None:
        real = load_real_data(dataset, data_dir, probe_train, probe_test, log=log)
    space = feature_space_for(real, feature_space, device, log)
    real_features = build_real_features(space, real, n, kid_subsets, seed)
    spec = variant.latent
    result = {
        "variant": variant.name,
        "dataset": real.dataset,
        **describe_real_features(real_features, real, seed),
        **evaluate_generator(generator_sampler(variant.G, spec, device), variant.output_range,
                             num_classes=spec.num_classes, cat_dim=spec.cat_dim,
                             real_features=real_features, seed=seed, inception=inception),
        **discriminator_metrics(variant, real, device, probe=probe,
                                probe_epochs=probe_epochs, seed=seed),
    }
    return result


def describe_real_features(real_features: RealFeatures, real: RealData,
                           seed: int = EVAL_SEED) -> dict[str, Any]:
    """JSON facts saying what the numbers were measured against, and in which space."""
    meta = real_features.space.meta
    out: dict[str, Any] = {
        **real_features.space.describe(),
        "real_images": real_features.source,
        "probe_images": real.probe_desc,
        "kid_subsets": real_features.kid_subsets,
        "kid_subset_size": real_features.kid_subset_size,
        "seed": seed,
    }
    if real_features.space.kind is SpaceKind.CLASSIFIER:
        out["classifier"] = meta.get("dataset", "?")
        out["classifier_heldout_accuracy"] = float(meta.get("heldout_accuracy", "nan"))
        out["classifier_heldout_n"] = int(meta.get("heldout_n", 0))
    return out


# --------------------------------------------------------------------------- during training


def real_data_for_config(cfg, probe_train: int = PROBE_TRAIN, probe_test: int = PROBE_TEST,
                         log: Callable[[str], Any] = print) -> RealData:
    """The real data of a run's config (its dataset, data dir, resolution and channels)."""
    return load_real_data(cfg.dataset, cfg.data_dir, probe_train, probe_test, log=log,
                          resolution=cfg.resolution, channels=cfg.channels,
                          background=getattr(cfg, "background", None))


class TrainingEvaluator:
    """``evaluator(trainer) -> {"fid", "kid", "classes_present", "largest_class_share", ...}``.

    Built by ``gan_accel.train`` when ``--eval-every N`` is set, before training starts: the
    real data is loaded, ``--eval-samples`` checked against it and the feature space built
    then (a labelled folder's classifier is trained then if its cache has none). Uses
    ``cfg.eval_samples`` generated images (the EMA G when the run keeps one) against as many
    real ones; the real features and floors are computed on the first call and reused. Fixed
    latent seed, so successive evaluations differ only by the weights. Adds the floors and,
    for cGAN / InfoGAN, ``label_accuracy`` / ``code_accuracy_generated``; with
    ``code_accuracy=True`` also InfoGAN's Q-head ``code_accuracy`` on held-out real images.
    """

    KEYS = ("feature_space", "fid", "kid", "precision", "recall", "density", "coverage",
            "classes_present", "num_classes", "largest_class_share", "max_share_ratio",
            "max_share_ratio_class", "fid_floor", "fid_ratio", "label_accuracy",
            "code_accuracy_generated", "spread_ratio", "noise_ignored")

    def __init__(self, cfg, kid_subsets: int = 20, log: Callable[[str], Any] = _quiet,
                 code_accuracy: bool = False, real: RealData | None = None,
                 feature_space: str | SpaceChoice = SpaceChoice.AUTO):
        self.cfg, self.kid_subsets, self.log = cfg, kid_subsets, log
        self.code_accuracy = code_accuracy
        self.real = real if real is not None else real_data_for_config(
            cfg, probe_train=0, probe_test=PROBE_TEST if code_accuracy else 0, log=log)
        self.real.check_n(cfg.eval_samples, "--eval-samples")
        self.space = feature_space_for(self.real, feature_space, "cpu", log=print)
        self.real_features: RealFeatures | None = None

    def _real_features(self, device) -> RealFeatures:
        if self.real_features is None:
            self.space.net.to(device)
            self.real_features = build_real_features(self.space, self.real,
                                                     self.cfg.eval_samples, self.kid_subsets)
        return self.real_features

    def __call__(self, trainer) -> dict[str, Any]:
        ref = self._real_features(trainer.device)
        variant = trainer.variant
        G = trainer.sampling_generator()
        spec = variant.latent
        res = evaluate_generator(generator_sampler(G, spec, trainer.device),
                                 variant.output_range, num_classes=spec.num_classes,
                                 cat_dim=spec.cat_dim, real_features=ref)
        out = {k: res[k] for k in self.KEYS if k in res}
        if self.code_accuracy and spec.cat_dim:  # InfoGAN's Q head on held-out real images
            out.update(discriminator_metrics(variant, self.real, trainer.device, probe=False))
        return out


# --------------------------------------------------------------------------- reporting


ROWS = (  # key, label, format
    ("fid", "FID", "{:.3f}"),
    ("fid_floor", "  real-data floor", "{:.3f}"),
    ("fid_ratio", "  FID / floor", "{:.2f}x"),
    ("kid", "KID", "{:.5f}"),
    ("kid_floor", "  real-data floor", "{:.5f}"),
    ("precision", "precision (k=3)", "{:.3f}"),
    ("precision_floor", "  real-data floor", "{:.3f}"),
    ("recall", "recall (k=3)", "{:.3f}"),
    ("recall_floor", "  real-data floor", "{:.3f}"),
    ("density", "density (k=5)", "{:.3f}"),
    ("density_floor", "  real-data floor", "{:.3f}"),
    ("coverage", "coverage (k=5)", "{:.3f}"),
    ("coverage_floor", "  real-data floor", "{:.3f}"),
    ("classes_present", "classes present", None),
    ("largest_class_share", "largest class share", "{:.1%}"),
    ("max_share_ratio", "largest share / real share", "{:.2f}x"),
    ("max_share_ratio_floor", "  real-data floor", "{:.2f}x"),
    ("kl_to_uniform", "KL to uniform (nats)", "{:.4f}"),
    ("collapsed", "mode collapse flagged", "{}"),
    ("label_accuracy", "label accuracy (cGAN)", "{:.2%}"),
    ("code_accuracy", "code accuracy, Q on real (InfoGAN)", "{:.2%}"),
    ("code_accuracy_generated", "code accuracy, generated (InfoGAN)", "{:.2%}"),
    ("spread_ratio", "spread within a label / code vs real", "{:.2f}"),
    ("noise_ignored", "G ignores its noise", "{}"),
    ("d_probe_accuracy", "D linear probe accuracy", "{:.2%}"),
)
INCEPTION_ROWS = (
    ("inception_fid", "Inception FID (local weights)", "{:.3f}"),
    ("inception_fid_floor", "  real-data floor", "{:.3f}"),
)


def format_header(result: dict[str, Any]) -> str:
    """The line naming the feature space every number of :func:`format_table` is in."""
    space = result.get("feature_space", "?")
    line = f"metrics in feature space {space} (input {result.get('feature_space_input', '?')})"
    if result.get("feature_space_kind") == SpaceKind.RANDOM_CNN.value:
        line += ": a fixed randomly initialised CNN, no training, no download; not Inception"
    elif "classifier_heldout_accuracy" in result:
        line += (f": the {result.get('classifier')} evaluation classifier, held-out accuracy "
                 f"{result['classifier_heldout_accuracy']:.2%}")
    return line


def format_table(result: dict[str, Any]) -> str:
    """A two-column text table of the headline metrics present in ``result``, under a header
    naming their feature space (and Inception FID, when measured, under its own)."""
    width = max(len(label) for _, label, _ in ROWS + INCEPTION_ROWS)
    lines = [format_header(result)]
    for key, label, fmt in ROWS:
        if key in result and result[key] is not None:
            text = (f"{result[key]}/{result.get('num_classes', 10)}" if fmt is None
                    else fmt.format(result[key]))
            if key == "max_share_ratio" and "max_share_ratio_class" in result:
                text += f" ({result['max_share_ratio_class']})"
            lines.append(f"{label:<{width}}  {text}")
    if "inception_fid" in result:
        lines.append(f"metrics in feature space {result['inception_feature_space']}")
        for key, label, fmt in INCEPTION_ROWS:
            lines.append(f"{label:<{width}}  {fmt.format(result[key])}")
    return "\n".join(lines)
