"""Tests for gan_accel.metrics (CPU, seeded, fast)."""

from __future__ import annotations

import functools
import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from gan_accel.evaluation.classifier import MnistClassifier
from gan_accel.evaluation.metrics import (
    class_histogram,
    cluster_accuracy,
    extract_features,
    frechet_distance,
    kernel_inception_distance,
    label_accuracy,
    linear_probe,
    real_floor,
    within_group_spread,
)


def _gauss(n: int, d: int, seed: int, mean: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + mean


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Independent FID: Tr sqrt(A B) via eigenvalues of the symmetric A^1/2 B A^1/2."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(ca)
    sa = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(sa @ cb @ sa), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * tr_sqrt)


# --------------------------------------------------------------------------- FID


@pytest.mark.parametrize("relu", [False, True])
def test_fid_identical_sets_is_zero(relu: bool) -> None:
    a = _gauss(600, 64, seed=0)
    if relu:  # non-negative, ReLU-like features as produced by the classifier
        a = torch.relu(a)
    scale = float(torch.var(a, dim=0).sum())
    perm = torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(1))
    assert frechet_distance(a, a) <= 1e-6 * scale
    assert frechet_distance(a, a[perm]) <= 1e-6 * scale  # row order is irrelevant


def test_fid_rank_deficient_identical_is_zero() -> None:
    # fewer samples than dimensions: singular covariance, sqrtm may return complex values
    a = torch.relu(_gauss(40, 128, seed=2))
    scale = float(torch.var(a, dim=0).sum())
    value = frechet_distance(a, a)
    assert math.isfinite(value)
    assert value <= 1e-6 * scale
    # and a rank-deficient pair still agrees with the eigenvalue-based reference formula
    b = torch.relu(_gauss(40, 128, seed=3, mean=0.2))
    assert frechet_distance(a, b) == pytest.approx(_fid_reference(a.numpy(), b.numpy()), rel=1e-6)


def test_fid_dead_features_no_warning() -> None:
    # classifier features can contain dead (always zero) units -> singular covariances
    a = torch.relu(_gauss(300, 32, seed=20))
    b = torch.relu(_gauss(300, 32, seed=21, mean=0.1))
    a[:, :6] = 0.0
    b[:, :6] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_distance(a, b)
    assert value == pytest.approx(_fid_reference(a.numpy(), b.numpy()), rel=1e-6)
    assert frechet_distance(a, a) <= 1e-6 * float(torch.var(a, dim=0).sum())


def test_fid_shift_equal_covariance_is_mean_distance() -> None:
    a = _gauss(800, 32, seed=3)
    delta = _gauss(1, 32, seed=4, scale=0.7)
    expected = float((delta**2).sum())
    assert frechet_distance(a, a + delta) == pytest.approx(expected, rel=1e-6)


def test_fid_matches_independent_formula_and_is_symmetric() -> None:
    a = _gauss(700, 24, seed=5)
    b = _gauss(900, 24, seed=6, mean=0.3, scale=1.5)
    fid_ab = frechet_distance(a, b)
    assert fid_ab == pytest.approx(_fid_reference(a.numpy(), b.numpy()), rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(fid_ab, rel=1e-8)
    # NumPy float32 input gives the same answer (computation is float64 internally)
    assert frechet_distance(a.numpy(), b.float().numpy()) == pytest.approx(fid_ab, rel=1e-5)


def test_fid_population_closed_form() -> None:
    # N(mu_a, diag(s_a^2)) vs N(mu_b, diag(s_b^2)): FID = |mu_a-mu_b|^2 + sum (s_a - s_b)^2
    d = 4
    a = _gauss(40000, d, seed=7, mean=0.0, scale=1.0)
    b = _gauss(40000, d, seed=8, mean=0.5, scale=2.0)
    expected = d * 0.5**2 + d * (2.0 - 1.0) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)


def test_fid_input_validation() -> None:
    a = _gauss(10, 4, seed=9)
    with pytest.raises(ValueError, match="dimensions"):
        frechet_distance(a, _gauss(10, 5, seed=9))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a, a[:1])
    bad = a.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(a, bad)
    with pytest.raises(ValueError, match="2-D"):
        frechet_distance(a[:, 0], a[:, 0])


# --------------------------------------------------------------------------- KID


def test_kid_same_distribution_near_zero_and_shift_positive() -> None:
    a = _gauss(600, 16, seed=10)
    b = _gauss(600, 16, seed=11)
    c = _gauss(600, 16, seed=12, mean=0.5)
    same_mean, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=300, seed=0)
    shift_mean, shift_std = kernel_inception_distance(a, c, subsets=20, subset_size=300, seed=0)
    assert shift_mean > 0.1
    assert shift_mean > 10 * abs(same_mean) + 3 * same_std
    assert abs(same_mean) < 0.01
    assert same_std >= 0 and shift_std >= 0


def test_kid_identical_sets_near_zero() -> None:
    # subsets drawn from the same set overlap, which biases the unbiased estimator slightly
    # below zero; it must still be tiny compared with a real difference
    a = _gauss(2000, 16, seed=13)
    mean, _ = kernel_inception_distance(a, a, subsets=10, subset_size=200, seed=0)
    shifted, _ = kernel_inception_distance(a, a + 0.5, subsets=10, subset_size=200, seed=0)
    assert shifted > 0.5
    assert abs(mean) < 0.02 * shifted


def mmd2_unbiased_loops(x: list, y: list) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3) with the cubic kernel (u.v / d + 1)^3 that KID
    uses, written as the plain double sums: no matrices, no shortcuts."""
    m, n, d = len(x), len(y), len(x[0])

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b, strict=True)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def test_kid_one_full_subset_is_the_hand_written_mmd2() -> None:
    a = _gauss(11, 5, seed=30)
    b = _gauss(11, 5, seed=31, mean=0.4, scale=1.3)
    ref = mmd2_unbiased_loops(a.tolist(), b.tolist())
    # one subset of the full size is a permutation of each set; MMD^2 is permutation invariant
    ours, std = kernel_inception_distance(a, b, subsets=1, subset_size=11, seed=3)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-14)
    assert std == 0.0
    assert ref > 0.05  # a real difference, not a vacuous zero


def test_kid_subsets_and_their_mean_and_std(monkeypatch) -> None:
    """Each subset draws distinct rows of each set; KID is the mean and population std of the
    hand-written MMD^2 over exactly those subsets."""
    import gan_accel.evaluation.metrics as metrics

    a = _gauss(20, 4, seed=32)
    b = _gauss(17, 4, seed=33, mean=0.3)
    drawn, real_mmd = [], metrics._poly_mmd2_unbiased
    monkeypatch.setattr(metrics, "_poly_mmd2_unbiased",
                        lambda x, y: (drawn.append((x.copy(), y.copy())), real_mmd(x, y))[1])
    mean, std = kernel_inception_distance(a, b, subsets=5, subset_size=7, seed=4)
    assert len(drawn) == 5
    rows_a, rows_b = {tuple(r) for r in a.tolist()}, {tuple(r) for r in b.tolist()}
    for x, y in drawn:
        assert x.shape == y.shape == (7, 4)
        xs, ys = {tuple(r) for r in x.tolist()}, {tuple(r) for r in y.tolist()}
        assert len(xs) == len(ys) == 7 and xs <= rows_a and ys <= rows_b  # without replacement
    assert len({x.tobytes() for x, _ in drawn}) == 5  # fresh subsets, not one drawn 5 times
    values = np.array([mmd2_unbiased_loops(x.tolist(), y.tolist()) for x, y in drawn])
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert std == pytest.approx(values.std(), rel=1e-10)  # population std (ddof 0)


@pytest.fixture(scope="module")
def classifier_features():
    """Real features of the shipped MNIST classifier: 300 real images vs 300 others (noisy,
    shifted real ones), the features FID and KID are computed on in the evaluation."""
    from gan_accel.data import embedded_subset
    from gan_accel.evaluation.pipeline import load_eval_classifier

    clf, _ = load_eval_classifier("mnist-5k")
    images = embedded_subset().images
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(images), generator=g)
    real = images[idx[:300]].float().div(255)
    other = images[idx[300:600]].float().div(255)
    other = torch.roll(other, 2, dims=-1).add_(0.3 * torch.rand(other.shape, generator=g))
    f_real, _ = extract_features(clf, real)
    f_other, _ = extract_features(clf, other.clamp_(0, 1))
    return f_real.double(), f_other.double()


class _Identity(torch.nn.Module):
    """torchmetrics' feature extractor slot, filled with the features themselves."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x


def test_fid_matches_torchmetrics_on_classifier_features(classifier_features) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    f_real, f_other = classifier_features
    tm = FrechetInceptionDistance(feature=_Identity(f_real.shape[1]))
    tm.update(f_real, real=True)
    tm.update(f_other, real=False)
    ref = float(tm.compute())
    ours = frechet_distance(f_real, f_other)
    assert ours == pytest.approx(ref, rel=1e-5)
    assert ours > 1.0  # the two sets differ


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_torchmetrics_on_classifier_features(classifier_features) -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    f_real, f_other = classifier_features
    n = f_real.shape[0]
    # full-size subsets: every subset is a permutation, so both give the exact MMD^2
    tm = KernelInceptionDistance(feature=_Identity(f_real.shape[1]), subsets=3, subset_size=n)
    tm.update(f_real, real=True)
    tm.update(f_other, real=False)
    ref_mean, ref_std = (float(v) for v in tm.compute())
    ours, std = kernel_inception_distance(f_real, f_other, subsets=3, subset_size=n, seed=0)
    assert ours == pytest.approx(ref_mean, rel=1e-9)
    assert std == pytest.approx(ref_std, abs=1e-9 * abs(ref_mean))
    assert ours > 0.01
    # random subsets: the same estimator, so the two means agree within their spread
    torch.manual_seed(0)
    tm = KernelInceptionDistance(feature=_Identity(f_real.shape[1]), subsets=40,
                                 subset_size=100)
    tm.update(f_real, real=True)
    tm.update(f_other, real=False)
    ref_mean, ref_std = (float(v) for v in tm.compute())
    ours, std = kernel_inception_distance(f_real, f_other, subsets=40, subset_size=100, seed=0)
    assert abs(ours - ref_mean) < 4 * max(std, ref_std) / math.sqrt(40)


def test_kid_seeded_and_validated() -> None:
    a = _gauss(300, 8, seed=16)
    b = _gauss(300, 8, seed=17, mean=0.3)
    r1 = kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=7)
    r2 = kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=7)
    r3 = kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=8)
    assert r1 == r2
    assert r1 != r3
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(a, b[:50], subsets=2, subset_size=100)
    with pytest.raises(ValueError, match="subsets"):
        kernel_inception_distance(a, b, subsets=0, subset_size=100)


# --------------------------------------------------------------------------- real floor


def test_real_floor_uses_disjoint_seeded_halves() -> None:
    feats = torch.arange(101, dtype=torch.float64).reshape(101, 1)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(x: torch.Tensor, y: torch.Tensor) -> float:
        seen.append((x, y))
        return 0.0

    real_floor(feats, record, seed=3)
    real_floor(feats, record, seed=3)
    real_floor(feats, record, seed=4)
    (x1, y1), (x2, y2), (x3, _) = seen
    assert x1.shape == (50, 1) and y1.shape == (50, 1)
    assert set(x1[:, 0].tolist()).isdisjoint(y1[:, 0].tolist())
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    real_floor(feats, record, seed=3, size=10)
    assert seen[-1][0].shape == (10, 1)


def test_real_floor_fid_is_symmetric_and_below_shifted() -> None:
    real = _gauss(2000, 16, seed=18)
    floor = real_floor(real, frechet_distance, seed=0)
    perm = torch.randperm(2000, generator=torch.Generator().manual_seed(0))
    h1, h2 = real[perm[:1000]], real[perm[1000:]]
    assert floor == pytest.approx(frechet_distance(h1, h2), rel=1e-12)
    assert floor == pytest.approx(frechet_distance(h2, h1), rel=1e-8)
    assert 0.0 < floor < frechet_distance(h1, _gauss(1000, 16, seed=19, mean=0.3))
    kid = functools.partial(kernel_inception_distance, subsets=5, subset_size=500)
    kid_floor = real_floor(real.numpy(), kid, seed=0)
    assert isinstance(kid_floor, tuple) and len(kid_floor) == 2
    assert abs(kid_floor[0]) < 0.01


def test_real_floor_validation() -> None:
    with pytest.raises(ValueError):
        real_floor(_gauss(3, 2, seed=0), frechet_distance)
    with pytest.raises(ValueError):
        real_floor(_gauss(10, 2, seed=0), frechet_distance, size=6)


# --------------------------------------------------------------------------- histograms


def test_one_class_is_collapsed() -> None:
    hist = class_histogram(torch.full((500,), 3, dtype=torch.int64))
    assert hist["collapsed"] is True
    assert hist["classes_present"] == 1
    assert hist["missing_classes"] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert hist["largest_class_share"] == 1.0
    assert hist["kl_to_uniform"] == pytest.approx(math.log(10), rel=1e-12)
    assert hist["counts"][3] == 500 and sum(hist["counts"]) == 500


def test_uniform_is_not_collapsed_and_kl_zero() -> None:
    hist = class_histogram(torch.arange(1000) % 10)
    assert hist["collapsed"] is False
    assert hist["classes_present"] == 10
    assert hist["missing_classes"] == []
    assert hist["largest_class_share"] == pytest.approx(0.1)
    assert hist["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    # random (not exactly uniform) predictions are not flagged either
    g = torch.Generator().manual_seed(0)
    rand = class_histogram(torch.randint(0, 10, (5000,), generator=g))
    assert rand["collapsed"] is False
    assert 0 < rand["kl_to_uniform"] < 0.01


def test_collapse_rules() -> None:
    # one class below 1%: not present -> collapsed
    labels = np.concatenate([np.repeat(np.arange(9), 110), np.full(9, 9)])  # 9/999 < 1%
    hist = class_histogram(labels)
    assert hist["classes_present"] == 9 and hist["missing_classes"] == [9]
    assert hist["collapsed"] is True
    # exactly 1% counts as present
    labels = np.concatenate([np.repeat(np.arange(9), 110), np.full(10, 9)])  # 10/1000
    assert class_histogram(labels)["classes_present"] == 10
    # all present but one class dominating (> 2 / num_classes)
    labels = np.concatenate([np.repeat(np.arange(10), 80), np.full(200, 0)])  # class 0: 28%
    hist = class_histogram(labels)
    assert hist["classes_present"] == 10
    assert hist["largest_class_share"] == pytest.approx(0.28)
    assert hist["collapsed"] is True
    with pytest.raises(ValueError):
        class_histogram(np.array([0, 10]))
    with pytest.raises(ValueError):
        class_histogram(np.array([], dtype=np.int64))
    with pytest.raises(ValueError):
        class_histogram(torch.tensor([0.0, 1.0]))


def test_label_accuracy() -> None:
    pred = torch.tensor([1, 2, 3, 4])
    assert label_accuracy(pred, torch.tensor([1, 2, 3, 0])) == 0.75
    assert label_accuracy(pred, pred) == 1.0
    with pytest.raises(ValueError):
        label_accuracy(pred, torch.tensor([1, 2]))


# --------------------------------------------------------------------------- Hungarian


def test_cluster_accuracy_recovers_permutation() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (2000,), generator=g)
    perm = torch.randperm(10, generator=g)
    clusters = perm[labels]  # cluster id of label y is perm[y]
    acc, mapping = cluster_accuracy(clusters, labels)
    assert acc == 1.0
    inverse = torch.argsort(perm).tolist()
    assert mapping == {c: inverse[c] for c in range(10)}


def test_cluster_accuracy_with_noise() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (5000,), generator=g)
    perm = torch.randperm(10, generator=g)
    clusters = perm[labels].clone()
    noisy = torch.rand(5000, generator=g) < 0.3
    clusters[noisy] = torch.randint(0, 10, (int(noisy.sum()),), generator=g)
    acc, mapping = cluster_accuracy(clusters, labels)
    expected = float((torch.argsort(perm)[clusters] == labels).double().mean())
    assert acc == pytest.approx(expected)
    assert 0.7 < acc < 0.8  # 70% clean + ~10% of the noisy ones land right by chance
    assert mapping == dict(enumerate(torch.argsort(perm).tolist()))


def test_cluster_accuracy_is_optimal_bruteforce() -> None:
    rng = np.random.default_rng(2)
    for _ in range(5):
        clusters = rng.integers(0, 4, 60)
        labels = rng.integers(0, 4, 60)
        best = max(
            np.mean(np.asarray(p)[clusters] == labels) for p in itertools.permutations(range(4))
        )
        acc, mapping = cluster_accuracy(clusters, labels, num_classes=4)
        assert acc == pytest.approx(best)
        assert sorted(mapping) == [0, 1, 2, 3] and sorted(mapping.values()) == [0, 1, 2, 3]


def test_cluster_accuracy_more_clusters_than_classes() -> None:
    labels = np.array([0, 0, 1, 1, 1, 0])
    clusters = np.array([0, 2, 1, 1, 1, 0])  # cluster 2 cannot be matched
    acc, mapping = cluster_accuracy(clusters, labels, num_classes=2, num_clusters=3)
    assert acc == pytest.approx(5 / 6)
    assert mapping == {0: 0, 1: 1}
    with pytest.raises(ValueError):
        cluster_accuracy(clusters, labels, num_classes=2)


# --------------------------------------------------------------------------- linear probe


def _blobs(n: int, seed: int, k: int = 4, d: int = 16, sep: float = 4.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=torch.Generator().manual_seed(100)) * sep
    y = torch.randint(0, k, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    return x, y


def test_linear_probe_separable_features() -> None:
    xtr, ytr = _blobs(400, seed=0)
    xte, yte = _blobs(400, seed=1)
    acc = linear_probe(xtr, ytr, xte, yte, epochs=100, lr=1.0, seed=0)
    assert acc > 0.97
    # standardisation makes it insensitive to feature scale and offset
    acc_scaled = linear_probe(xtr * 1e3 + 5, ytr, xte * 1e3 + 5, yte, epochs=100, lr=1.0, seed=0)
    assert acc_scaled > 0.97


def test_linear_probe_random_labels_near_chance() -> None:
    g = torch.Generator().manual_seed(3)
    xtr, xte = torch.randn(500, 16, generator=g), torch.randn(2000, 16, generator=g)
    ytr, yte = torch.randint(0, 2, (500,), generator=g), torch.randint(0, 2, (2000,), generator=g)
    acc = linear_probe(xtr, ytr, xte, yte, epochs=50, lr=1.0, seed=0)
    assert 0.4 < acc < 0.6


def test_linear_probe_validation() -> None:
    x, y = _blobs(20, seed=0)
    with pytest.raises(ValueError):
        linear_probe(x, y, x[:, :3], y, epochs=5, lr=1.0, seed=0)
    with pytest.raises(ValueError):
        linear_probe(x, y[:10], x, y, epochs=5, lr=1.0, seed=0)


# --------------------------------------------------------------------------- extract_features


def test_extract_features_shapes_batches_and_modes() -> None:
    torch.manual_seed(0)
    clf = MnistClassifier().train()
    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (37, 28, 28), generator=g, dtype=torch.uint8)
    feats, preds = extract_features(clf, u8, batch_size=512)
    assert feats.shape == (37, 128) and feats.dtype == torch.float32
    assert preds.shape == (37,) and preds.dtype == torch.int64
    assert clf.training  # mode restored
    feats_b, preds_b = extract_features(clf, u8.float().div(255).unsqueeze(1), batch_size=5)
    torch.testing.assert_close(feats_b, feats, rtol=1e-5, atol=1e-5)
    assert torch.equal(preds_b, preds)
    with torch.no_grad():
        ref = clf.eval()(u8.float().div(255).unsqueeze(1)).argmax(1)
    assert torch.equal(preds, ref)
    assert not feats.requires_grad


def test_extract_features_rejects_wrong_range() -> None:
    clf = MnistClassifier()
    x = torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)
    with pytest.raises(ValueError, match="OutputRange.to_unit"):
        extract_features(clf, x)
    with pytest.raises(ValueError):
        extract_features(clf, torch.zeros(2, 3, 28, 28))


# --------------------------------------------------------------------------- spread


def test_within_group_spread_is_the_mean_squared_distance_to_each_group_mean() -> None:
    feats = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 5.0], [9.0, 9.0]])
    groups = np.array([0, 0, 1, 1, 2])  # group 2 has one row: left out
    # group 0: both rows 1 from their mean (squared 1); group 1: one repeated image (0)
    assert within_group_spread(feats, groups) == pytest.approx(0.5)
    assert within_group_spread(feats[2:4], groups[2:4]) == 0.0
    with pytest.raises(ValueError, match="no group has two rows"):
        within_group_spread(feats[:1], groups[:1])
