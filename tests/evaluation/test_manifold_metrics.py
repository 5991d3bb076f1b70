"""Precision/recall (Kynkaanniemi et al. 2019), density/coverage (Naeem et al. 2020) and
class coverage against the real data's shares: against brute-force loops and known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_accel.evaluation.metrics import (
    class_coverage,
    density_coverage,
    precision_recall,
)


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    out = []
    for i in range(len(x)):
        d = sorted(float(np.linalg.norm(x[i] - x[j])) for j in range(len(x)) if j != i)
        out.append(d[k - 1])
    return np.array(out)


def _brute(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int):
    """The papers' definitions, written as loops."""
    rr, rf = _radii(real, k_pr), _radii(fake, k_pr)
    d = np.array([[np.linalg.norm(r - f) for f in fake] for r in real])  # [N, M]
    precision = np.mean([any(d[i, j] <= rr[i] for i in range(len(real)))
                         for j in range(len(fake))])
    recall = np.mean([any(d[i, j] <= rf[j] for j in range(len(fake)))
                      for i in range(len(real))])
    rd = _radii(real, k_dc)
    density = np.mean([sum(d[i, j] <= rd[i] for i in range(len(real)))
                       for j in range(len(fake))]) / k_dc
    coverage = np.mean([any(d[i, j] <= rd[i] for j in range(len(fake)))
                        for i in range(len(real))])
    return precision, recall, density, coverage


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_definitions_written_as_loops(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(40, 5))
    fake = rng.normal(loc=0.7, scale=1.3, size=(33, 5))
    p, r = precision_recall(real, fake, k=3)
    d, c = density_coverage(real, fake, k=5)
    bp, br, bd, bc = _brute(real, fake, 3, 5)
    assert (p, r, d, c) == pytest.approx((bp, br, bd, bc), abs=1e-12)
    assert 0 < p < 1 and 0 < r < 1 and 0 < c < 1  # a case that tells the four apart


def test_known_cases():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    same = real.copy()
    assert precision_recall(real, same) == (1.0, 1.0)
    d, c = density_coverage(real, same)
    assert c == 1.0 and d == pytest.approx(1.0 + 1 / 5)  # each point in its own ball + k of others'
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)
    # mode dropping: fakes from one half of a two-mode real set
    modes = np.concatenate([rng.normal(size=(100, 8)), rng.normal(size=(100, 8)) + 20.0])
    half = rng.normal(size=(100, 8))
    p, r = precision_recall(modes, half)
    d, c = density_coverage(modes, half)
    assert p > 0.9 and 0.35 < r < 0.55 and 0.35 < c < 0.55
    # torch tensors work like numpy arrays
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(same)) == (1.0, 1.0)


def test_rejects_too_few_samples_and_bad_shapes():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="at least 4"):
        precision_recall(x, np.ones((10, 4)), k=3)
    with pytest.raises(ValueError, match="dimensions differ"):
        density_coverage(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        precision_recall(np.full((10, 2), np.nan), np.zeros((10, 2)))


def test_class_coverage_is_relative_to_the_real_shares():
    real = np.array([0] * 60 + [1] * 30 + [2] * 10)  # unbalanced, like a folder
    same = class_coverage(real, real, 3)
    assert same["classes_present"] == 3 and same["max_share_ratio"] == pytest.approx(1.0)
    assert not same["collapsed"] and same["kl_to_real"] == pytest.approx(0.0)
    uniform = class_coverage(np.array([0, 1, 2] * 30), real, 3)
    assert uniform["max_share_ratio"] == pytest.approx((1 / 3) / 0.1)  # class 2: 3.3x
    assert uniform["max_share_ratio_class"] == 2 and uniform["collapsed"]
    missing = class_coverage(np.array([0] * 70 + [1] * 30), real, 3)
    assert missing["classes_present"] == 2 and missing["missing_classes"] == [2]
    # present from a tenth of the real share: on balanced 10 classes that is 1% of samples
    balanced = np.arange(1000) % 10
    few = np.concatenate([np.full(10, 9), np.arange(990) % 9])  # class 9 at exactly 1%
    assert class_coverage(few, balanced, 10)["classes_present"] == 10
    fewer = np.concatenate([np.full(9, 9), np.arange(991) % 9])
    assert class_coverage(fewer, balanced, 10)["classes_present"] == 9
    # a class the real data never shows is never present, and not listed as missing
    absent = class_coverage(np.array([0, 1, 3]), np.array([0, 1, 1, 0]), 4)
    assert absent["num_classes"] == 4 and absent["real_classes"] == 2
    assert absent["classes_present"] == 2 and absent["missing_classes"] == []
    assert absent["max_share_ratio"] == float("inf")  # fakes in a class the real data lacks
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        class_coverage(np.array([3]), real, 3)
