"""GAN quality metrics computed in the feature space of the evaluation classifier.

All functions are pure: they take tensors (or NumPy arrays) and return Python numbers or
small JSON-serialisable structures. Heavy lifting is delegated to well-kept libraries:
``scipy.linalg.sqrtm`` for the Frechet distance and ``scipy.optimize.linear_sum_assignment``
for Hungarian matching. The KID estimator reproduces ``torchmetrics``' implementation
(cubic polynomial kernel, unbiased MMD^2, population std over subsets).

Typical use::

    clf, _ = load_classifier(path)
    f_real, _ = extract_features(clf, real_images_u8)
    f_fake, y_fake = extract_features(clf, OutputRange.SYMMETRIC.to_unit(generator(z)))
    fid = frechet_distance(f_real, f_fake)
    floor = real_floor(f_real_big, frechet_distance, seed=0)   # best achievable at that size
    hist = class_histogram(y_fake)                               # mode-collapse check
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

__all__ = [
    "frechet_distance",
    "kernel_inception_distance",
    "precision_recall",
    "density_coverage",
    "real_floor",
    "class_histogram",
    "class_coverage",
    "within_group_spread",
    "label_accuracy",
    "cluster_accuracy",
    "linear_probe",
    "extract_features",
]

ArrayLike = Tensor | np.ndarray


def _features_f64(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, D] feature array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _labels_i64(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        if x.dtype.is_floating_point or x.dtype.is_complex:
            raise ValueError(f"{name} must be integer labels, got {x.dtype}")
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integer labels, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} contains negative labels")
    return arr


def _check_pair(a: np.ndarray, b: np.ndarray, min_n: int) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[0] < min_n or b.shape[0] < min_n:
        raise ValueError(
            f"need at least {min_n} samples per set, got {a.shape[0]} and {b.shape[0]}"
        )


# --------------------------------------------------------------------------- FID / KID


def frechet_distance(feat_a: ArrayLike, feat_b: ArrayLike) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` with unbiased sample covariances,
    computed in float64. Like the reference pytorch-fid code, a tiny ``1e-6 * I`` is added to both
    covariances if the matrix square root is not finite, and the imaginary part that ``sqrtm``
    may return for (near-)singular products is discarded. The result is clamped at 0.

    Args:
        feat_a: ``[N_a, D]`` features (torch tensor or NumPy array), ``N_a >= 2``.
        feat_b: ``[N_b, D]`` features, ``N_b >= 2``.

    Returns:
        the distance as a Python float (same units as squared features).
    """
    a = _features_f64(feat_a, "feat_a")
    b = _features_f64(feat_b, "feat_b")
    _check_pair(a, b, 2)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # dead (all-zero) features make the covariances singular; sqrtm then warns although the
        # trace it yields is accurate (checked against an eigenvalue formula in the tests)
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(cov_a.shape[0]) * 1e-6
            covmean = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with kernel ``k(u, v) = (u.v / D + 1)^3`` for equal-size sets."""
    m, d = x.shape

    def kernel(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        k = u @ v.T
        k *= 1.0 / d
        k += 1.0
        return k * k * k  # faster than ** 3

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    feat_a: ArrayLike,
    feat_b: ArrayLike,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018) on arbitrary features.

    For each of ``subsets`` rounds, ``subset_size`` rows are drawn without replacement from each
    set and the unbiased MMD^2 with the cubic polynomial kernel ``(u.v / D + 1)^3`` is computed;
    this matches ``torchmetrics.image.KernelInceptionDistance`` (which also reports the population
    std). The estimator is unbiased, so values can be slightly negative for identical
    distributions.

    Args:
        feat_a: ``[N_a, D]`` features.
        feat_b: ``[N_b, D]`` features.
        subsets: number of random subsets (>= 1).
        subset_size: rows per subset; must be ``>= 2`` and ``<= min(N_a, N_b)``.
        seed: seed of the subset sampling.

    Returns:
        ``(mean, std)`` over subsets, as Python floats.
    """
    a = _features_f64(feat_a, "feat_a")
    b = _features_f64(feat_b, "feat_b")
    _check_pair(a, b, 2)
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if subset_size < 2 or subset_size > min(a.shape[0], b.shape[0]):
        raise ValueError(
            f"subset_size must be in [2, min(N_a, N_b)] = [2, "
            f"{min(a.shape[0], b.shape[0])}], got {subset_size}"
        )
    rng = np.random.default_rng(seed)
    scores = np.empty(subsets, dtype=np.float64)
    for i in range(subsets):
        xa = a[rng.permutation(a.shape[0])[:subset_size]]
        xb = b[rng.permutation(b.shape[0])[:subset_size]]
        scores[i] = _poly_mmd2_unbiased(xa, xb)
    return float(scores.mean()), float(scores.std())


# --------------------------------------------------------------------------- k-NN manifolds

PR_K = 3  # Kynkaanniemi et al. 2019: k = 3
DC_K = 5  # Naeem et al. 2020: k = 5


def _pairwise(a: np.ndarray, b: np.ndarray) -> Tensor:
    """``[N_a, N_b]`` Euclidean distances, float64."""
    return torch.cdist(torch.from_numpy(a), torch.from_numpy(b))


def _knn_radii(feats: np.ndarray, k: int) -> Tensor:
    """Distance of each row to its k-th nearest neighbour in the same set (itself excluded)."""
    if feats.shape[0] <= k:
        raise ValueError(f"need more than k={k} samples per set, got {feats.shape[0]}")
    d = _pairwise(feats, feats)
    # the (k+1)-th smallest includes the zero distance of a row to itself
    return d.kthvalue(k + 1, dim=1).values


def precision_recall(feat_real: ArrayLike, feat_fake: ArrayLike, k: int = PR_K
                     ) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    precision: the share of fake samples inside the real manifold (the union of balls around
    each real sample reaching its k-th nearest real neighbour); recall: the share of real
    samples inside the fake manifold. Both in ``[0, 1]``; 1 is best.

    Args:
        feat_real: ``[N, D]`` real features.
        feat_fake: ``[M, D]`` generated features.
        k: the neighbour that sets each ball's radius.

    Returns:
        ``(precision, recall)`` as Python floats.
    """
    real = _features_f64(feat_real, "feat_real")
    fake = _features_f64(feat_fake, "feat_fake")
    _check_pair(real, fake, k + 1)
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    d = _pairwise(real, fake)  # [N, M]
    precision = (d <= r_real[:, None]).any(dim=0).double().mean()
    recall = (d <= r_fake[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def density_coverage(feat_real: ArrayLike, feat_fake: ArrayLike, k: int = DC_K
                     ) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with k-NN balls around the real samples.

    density: how many real balls contain each fake sample, averaged and divided by ``k``
    (about 1 for matching distributions; above 1 where fakes crowd dense real regions);
    coverage: the share of real balls that contain at least one fake sample (in ``[0, 1]``).

    Args:
        feat_real: ``[N, D]`` real features.
        feat_fake: ``[M, D]`` generated features.
        k: the neighbour that sets each real ball's radius.

    Returns:
        ``(density, coverage)`` as Python floats.
    """
    real = _features_f64(feat_real, "feat_real")
    fake = _features_f64(feat_fake, "feat_fake")
    _check_pair(real, fake, k + 1)
    r_real = _knn_radii(real, k)
    inside = _pairwise(real, fake) <= r_real[:, None]  # [N, M]: fake j in real ball i
    density = inside.sum(dim=0).double().mean() / k
    coverage = inside.any(dim=1).double().mean()
    return float(density), float(coverage)


def real_floor(
    features_real: ArrayLike,
    metric_fn: Callable[[Tensor, Tensor], Any],
    seed: int = 0,
    size: int | None = None,
) -> Any:
    """The metric between two disjoint random halves of a real feature set.

    This is the best value a perfect generator can expect when compared with ``size`` real
    samples using ``size`` generated samples (FID in particular is biased upwards at small N).
    Compare a generator against the floor computed at the same per-set sample size.

    Args:
        features_real: ``[N, D]`` real features.
        metric_fn: called as ``metric_fn(half_a, half_b)``, e.g. :func:`frechet_distance` or
            ``functools.partial(kernel_inception_distance, subset_size=...)``.
        seed: seed of the random split.
        size: rows per half; defaults to ``N // 2``. ``2 * size`` must not exceed ``N``.

    Returns:
        whatever ``metric_fn`` returns.
    """
    if isinstance(features_real, np.ndarray):
        features_real = torch.from_numpy(features_real)
    if features_real.dim() != 2:
        raise ValueError(f"features_real must be [N, D], got shape {tuple(features_real.shape)}")
    n = features_real.shape[0]
    size = n // 2 if size is None else size
    if size < 2 or 2 * size > n:
        raise ValueError(f"need 2 <= size and 2 * size <= N; got size={size}, N={n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return metric_fn(features_real[perm[:size]], features_real[perm[size : 2 * size]])


# --------------------------------------------------------------------------- label statistics


def within_group_spread(features: ArrayLike, groups: ArrayLike) -> float:
    """Mean squared distance of each row of ``features`` [N, D] to the mean of its group
    (``groups`` [N] integer ids), averaged over the groups with at least two rows: how much
    images that share a label or code differ. 0 when every group is one repeated image."""
    feats = _features_f64(features, "features")
    ids = _labels_i64(groups, "groups")
    if ids.shape[0] != feats.shape[0]:
        raise ValueError(f"features has {feats.shape[0]} rows, groups {ids.shape[0]}")
    spreads = []
    for g in np.unique(ids):
        rows = feats[ids == g]
        if rows.shape[0] >= 2:
            spreads.append(float(((rows - rows.mean(0)) ** 2).sum(1).mean()))
    if not spreads:
        raise ValueError("no group has two rows")
    return float(np.mean(spreads))


def class_histogram(
    pred_labels: ArrayLike,
    num_classes: int = 10,
    min_share: float = 0.01,
    max_share_factor: float = 2.0,
) -> dict[str, Any]:
    """Class histogram of predicted labels with a mode-collapse flag.

    Rules (defaults): a class is *present* if it receives at least ``min_share`` (1%) of the
    samples, i.e. ``count >= 0.01 * N``. The set is flagged ``collapsed`` if fewer than
    ``num_classes`` classes are present **or** the largest class exceeds
    ``max_share_factor / num_classes`` of the samples (20% for 10 classes, twice the uniform
    share). ``kl_to_uniform`` is ``KL(p || uniform)`` in nats (0 for a uniform histogram,
    ``log(num_classes)`` for a single class).

    Args:
        pred_labels: ``[N]`` integer predictions in ``[0, num_classes)``.
        num_classes: number of classes.
        min_share: minimum share for a class to count as present.
        max_share_factor: collapse if the largest share exceeds this times ``1 / num_classes``.

    Returns:
        dict with ``n``, ``counts`` (list), ``shares`` (list), ``classes_present`` (int),
        ``missing_classes`` (list), ``largest_class_share``, ``kl_to_uniform``, ``collapsed``,
        ``min_share`` and ``max_share`` (the thresholds used).
    """
    labels = _labels_i64(pred_labels, "pred_labels")
    n = labels.size
    if n == 0:
        raise ValueError("pred_labels is empty")
    if labels.max() >= num_classes:
        raise ValueError(f"pred_labels must lie in [0, {num_classes}), found {labels.max()}")
    counts = np.bincount(labels, minlength=num_classes)
    shares = counts / n
    present = counts >= min_share * n
    nz = shares > 0
    kl = float(np.sum(shares[nz] * np.log(shares[nz] * num_classes)))
    max_share = max_share_factor / num_classes
    largest = float(shares.max())
    classes_present = int(present.sum())
    return {
        "n": int(n),
        "counts": [int(c) for c in counts],
        "shares": [float(s) for s in shares],
        "classes_present": classes_present,
        "missing_classes": [int(i) for i in np.flatnonzero(~present)],
        "largest_class_share": largest,
        "kl_to_uniform": max(kl, 0.0),
        "collapsed": bool(classes_present < num_classes or largest > max_share),
        "min_share": float(min_share),
        "max_share": float(max_share),
    }


def class_coverage(
    pred_fake: ArrayLike,
    pred_real: ArrayLike,
    num_classes: int,
    min_share_ratio: float = 0.1,
    max_share_ratio: float = 2.0,
) -> dict[str, Any]:
    """Class coverage of generated samples measured against the real data's own shares.

    Folders are unbalanced, so each class's generated share is compared with its share in
    the real data (both from the same classifier's predictions, so its biases cancel): the
    share ratio of class ``c`` is ``share_fake[c] / share_real[c]``. A class is *present* if
    its ratio is at least ``min_share_ratio`` (0.1: on balanced 10-class data, 1% of the
    samples); ``collapsed`` flags a missing class or a ratio above ``max_share_ratio``.

    Args:
        pred_fake: ``[N]`` classifier predictions on generated images.
        pred_real: ``[M]`` classifier predictions on real images.
        num_classes: classes of the classifier.
        min_share_ratio: a class is present from this ratio up.
        max_share_ratio: a ratio above this flags collapse.

    Returns:
        dict with ``classes_present`` of ``num_classes`` (a class the classifier never sees
        in the real data is never present), ``real_classes`` (the classes it sees there),
        ``missing_classes`` (ids of classes the real data has but the fakes lack),
        ``shares`` and ``real_shares`` (lists), ``largest_class_share``, ``max_share_ratio``
        and ``max_share_ratio_class`` (the class with the largest ratio), ``collapsed``,
        ``kl_to_real`` (KL(fake || real) in nats, real shares floored at 1e-12).
    """
    fake = _labels_i64(pred_fake, "pred_fake")
    real = _labels_i64(pred_real, "pred_real")
    if fake.size == 0 or real.size == 0:
        raise ValueError("pred_fake and pred_real must not be empty")
    if max(fake.max(), real.max()) >= num_classes:
        raise ValueError(f"predictions must lie in [0, {num_classes})")
    shares = np.bincount(fake, minlength=num_classes) / fake.size
    real_shares = np.bincount(real, minlength=num_classes) / real.size
    seen = real_shares > 0  # a class the real data never shows cannot be missing
    ratio = np.divide(shares, real_shares, out=np.full(num_classes, np.inf), where=seen)
    ratio[~seen & (shares == 0)] = 0.0
    present = seen & (shares + 1e-12 >= min_share_ratio * real_shares)  # 1e-12: rounding
    worst = int(np.argmax(ratio))
    nz = shares > 0
    kl = float(np.sum(shares[nz] * np.log(shares[nz] / np.maximum(real_shares[nz], 1e-12))))
    return {
        "classes_present": int(present.sum()),
        "num_classes": int(num_classes),
        "real_classes": int(seen.sum()),
        "missing_classes": [int(i) for i in np.flatnonzero(seen & ~present)],
        "shares": [float(s) for s in shares],
        "real_shares": [float(s) for s in real_shares],
        "largest_class_share": float(shares.max()),
        "max_share_ratio": float(ratio[worst]),
        "max_share_ratio_class": worst,
        "collapsed": bool(present.sum() < seen.sum() or ratio[worst] > max_share_ratio),
        "kl_to_real": max(kl, 0.0),
    }


def label_accuracy(pred_labels: ArrayLike, requested_labels: ArrayLike) -> float:
    """Fraction of conditional samples classified as the label they were generated for (cGAN).

    Args:
        pred_labels: ``[N]`` classifier predictions.
        requested_labels: ``[N]`` labels fed to the conditional generator.

    Returns:
        accuracy in ``[0, 1]``.
    """
    pred = _labels_i64(pred_labels, "pred_labels")
    req = _labels_i64(requested_labels, "requested_labels")
    if pred.shape != req.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {req.shape}")
    if pred.size == 0:
        raise ValueError("empty label arrays")
    return float(np.mean(pred == req))


def cluster_accuracy(
    pred_clusters: ArrayLike,
    true_labels: ArrayLike,
    num_classes: int = 10,
    num_clusters: int | None = None,
) -> tuple[float, dict[int, int]]:
    """Accuracy of an unsupervised clustering after optimal one-to-one matching (Hungarian).

    Used for InfoGAN: ``pred_clusters`` is the categorical code a sample was generated with and
    ``true_labels`` the evaluation classifier's prediction. The cluster-to-class assignment that
    maximises agreement is found with ``scipy.optimize.linear_sum_assignment``; if there are more
    clusters than classes, unmatched clusters count as errors.

    Args:
        pred_clusters: ``[N]`` cluster ids in ``[0, num_clusters)``.
        true_labels: ``[N]`` class labels in ``[0, num_classes)``.
        num_classes: number of classes.
        num_clusters: number of clusters (defaults to ``num_classes``).

    Returns:
        ``(accuracy, mapping)`` where ``mapping[cluster] = class`` for every matched cluster.
    """
    clusters = _labels_i64(pred_clusters, "pred_clusters")
    labels = _labels_i64(true_labels, "true_labels")
    num_clusters = num_classes if num_clusters is None else num_clusters
    if clusters.shape != labels.shape:
        raise ValueError(f"shape mismatch: {clusters.shape} vs {labels.shape}")
    if clusters.size == 0:
        raise ValueError("empty label arrays")
    if clusters.max() >= num_clusters or labels.max() >= num_classes:
        raise ValueError(
            f"ids out of range: clusters < {num_clusters}, labels < {num_classes} "
            f"required, got max {clusters.max()} and {labels.max()}"
        )
    confusion = np.zeros((num_clusters, num_classes), dtype=np.int64)
    np.add.at(confusion, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    acc = float(confusion[rows, cols].sum() / clusters.size)
    return acc, {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


# --------------------------------------------------------------------------- linear probe


def linear_probe(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    test_labels: ArrayLike,
    *,
    epochs: int = 100,
    lr: float = 1.0,
    seed: int = 0,
    weight_decay: float = 1e-4,
    num_classes: int | None = None,
) -> float:
    """Held-out accuracy of multinomial logistic regression on frozen features.

    Features are standardised with the training mean/std (std floored at 1e-6 for dead
    features), then a linear layer is fitted full-batch with L-BFGS (strong-Wolfe line search)
    on cross-entropy plus ``weight_decay * ||W||^2 / 2``, in float64 on CPU. The problem is
    convex, so the result depends only weakly on ``seed`` (used for the small initialisation).

    Args:
        train_feats: ``[N_train, D]`` features.
        train_labels: ``[N_train]`` integer labels.
        test_feats: ``[N_test, D]`` features.
        test_labels: ``[N_test]`` integer labels.
        epochs: maximum number of L-BFGS iterations.
        lr: L-BFGS step length (1.0 is standard with a line search).
        seed: seed of the weight initialisation.
        weight_decay: L2 penalty on the weights (keeps separable problems bounded).
        num_classes: number of classes; inferred from the labels if ``None``.

    Returns:
        accuracy on the test set.
    """
    xtr = torch.from_numpy(_features_f64(train_feats, "train_feats"))
    xte = torch.from_numpy(_features_f64(test_feats, "test_feats"))
    ytr = torch.from_numpy(_labels_i64(train_labels, "train_labels"))
    yte = torch.from_numpy(_labels_i64(test_labels, "test_labels"))
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"feature dimensions differ: {xtr.shape[1]} vs {xte.shape[1]}")
    if xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0]:
        raise ValueError("features and labels must have the same number of rows")
    if xtr.shape[0] < 2 or xte.shape[0] < 1:
        raise ValueError("need at least 2 training and 1 test sample")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    k = num_classes if num_classes is not None else int(max(ytr.max(), yte.max())) + 1
    if int(ytr.max()) >= k or int(yte.max()) >= k:
        raise ValueError(f"labels must lie in [0, {k})")

    mean = xtr.mean(dim=0)
    std = xtr.std(dim=0).clamp_min(1e-6)
    xtr = (xtr - mean) / std
    xte = (xte - mean) / std

    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(xtr.shape[1], k, generator=gen, dtype=torch.float64) * 0.01
    weight.requires_grad_(True)
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        lr=lr,
        max_iter=epochs,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ weight + bias, ytr)
        loss = loss + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = (xte @ weight + bias).argmax(dim=1)
    return float((pred == yte).double().mean())


# --------------------------------------------------------------------------- features


def pixel_scale(images: Tensor) -> float:
    """The factor that brings ``images`` to ``[0, 1]``: 1/255 for uint8, 1 for floats already
    there. Floats outside ``[-1e-3, 1 + 1e-3]`` (un-converted ``[-1, 1]`` generator outputs)
    and other dtypes raise ``ValueError``."""
    if images.dtype == torch.uint8:
        return 1.0 / 255.0
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    if images.numel():
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3 or math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"float images must lie in [0, 1], got range [{lo:.3f}, "
                             f"{hi:.3f}] (use OutputRange.to_unit for generator outputs)")
    return 1.0


def extract_features(
    classifier: nn.Module, images: Tensor, batch_size: int = 512
) -> tuple[Tensor, Tensor]:
    """Penultimate features and predicted labels of the evaluation classifier.

    Runs under ``torch.no_grad`` in eval mode (the module's previous mode is restored), on the
    classifier's device, batch by batch.

    Args:
        classifier: an :class:`~gan_accel.evaluation.classifier.ImageClassifier` (or any
            module with a ``features_and_logits(x) -> (features, logits)`` method; one with an
            ``image_shape`` has its input shape checked).
        images: ``[N, C, R, R]`` (``[N, 28, 28]``: one channel) images: uint8 in ``[0, 255]``
            or float in ``[0, 1]`` (convert generator outputs with ``OutputRange.to_unit``
            first; floats outside ``[-1e-3, 1 + 1e-3]`` raise ``ValueError`` to catch
            un-converted ``[-1, 1]`` data).
        batch_size: images per forward pass.

    Returns:
        ``(features [N, D] float32, predicted labels [N] int64)`` on CPU.
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    shape = tuple(getattr(classifier, "image_shape", (1, 28, 28)))
    if images.dim() != 4 or tuple(images.shape[1:]) != shape:
        raise ValueError(f"expected images [N, {', '.join(map(str, shape))}]"
                         f"{' or [N, 28, 28]' if shape == (1, 28, 28) else ''}, got "
                         f"{tuple(images.shape)}")
    scale = pixel_scale(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    try:
        device = next(classifier.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = classifier.training
    classifier.eval()
    feats, preds = [], []
    try:
        with torch.no_grad():
            for i in range(0, images.shape[0], batch_size):
                xb = images[i : i + batch_size].to(device).float() * scale
                f, logits = classifier.features_and_logits(xb)
                feats.append(f.float().cpu())
                preds.append(logits.argmax(dim=1).cpu())
    finally:
        classifier.train(was_training)
    if not feats:
        raise ValueError("images is empty")
    return torch.cat(feats), torch.cat(preds).long()
