"""gan_accel.latent_apps (numpy, torch-free) and LatentSpec.check_class: the one implementation
the sample CLI, the server's metadata and the playground's model card share."""

from __future__ import annotations

import numpy as np
import pytest

from gan_accel import latent_apps as apps
from gan_accel.errors import UserError
from gan_accel.latent import LatentSpec

CGAN = LatentSpec(64, num_classes=10)
INFOGAN = LatentSpec(10, "uniform", cat_dim=10, cont_dim=2)
DCGAN = LatentSpec(16)


def pool(spec, n=20, seed=0):
    return spec.sample_numpy(n, np.random.default_rng(seed))


@pytest.mark.parametrize("label, bad", [(10, 10), (-1, -1), (np.array([0, 3, 11]), 11)])
def test_check_class_names_the_first_bad_class(label, bad):
    CGAN.check_class(3)
    CGAN.check_class(np.arange(10))
    with pytest.raises(ValueError, match=f"label {bad} is out of range 0..9"):
        CGAN.check_class(label)
    with pytest.raises(ValueError, match="--label needs a conditional model"):
        DCGAN.check_class(0, "--label")
    INFOGAN.check_class(9)  # the categorical code
    with pytest.raises(ValueError, match="out of range 0..9"):
        INFOGAN.check_class(10)


def test_class_grid_rows_are_classes_columns_are_samples():
    for spec in (CGAN, INFOGAN):
        p = pool(spec)
        lat = apps.class_grid(spec, p)
        rows = np.repeat(np.arange(10), 10)
        classes = lat["label"] if spec.num_classes else lat["codes"][:, :10].argmax(1)
        np.testing.assert_array_equal(classes, rows)
        z = lat["z"].reshape(10, 10, -1)
        np.testing.assert_array_equal(z[4], p["z"][:10])  # column j = sample j in every row
    with pytest.raises(UserError, match="needs a cgan or infogan"):
        apps.class_grid(DCGAN, pool(DCGAN))


def test_slerp_keeps_the_norm_and_hits_the_ends():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    b = b / np.linalg.norm(b) * np.linalg.norm(a)
    t = np.linspace(0, 1, 7, dtype=np.float32)
    path = apps.slerp(a, b, t)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-5)
    line = apps.lerp(a, b, t)
    assert np.linalg.norm(line[3]) < np.linalg.norm(path[3])
    assert np.isfinite(apps.slerp(a, a, t)).all()


def test_interpolation_rows_run_from_i_to_j():
    p = pool(INFOGAN)
    lat = apps.interpolation(p, [(4, 9), (0, 19)], 5, apps.InterpolationPath.LINEAR)
    z = lat["z"].reshape(2, 5, -1)
    np.testing.assert_allclose(z[0, 0], p["z"][4], atol=1e-6)
    np.testing.assert_allclose(z[1, -1], p["z"][19], atol=1e-6)
    np.testing.assert_allclose(lat["codes"][2], (p["codes"][4] + p["codes"][9]) / 2, atol=1e-6)
    cg = pool(CGAN)
    assert (apps.interpolation(cg, [(1, 2)], 4)["label"] == cg["label"][1]).all()


def test_parsers_and_their_errors():
    assert apps.parse_pairs("0:5, 3:9", 10) == [(0, 5), (3, 9)]
    assert apps.default_pairs(5) == [(0, 1), (2, 3)]
    assert apps.parse_arithmetic("1,2 - 3", 5) == [(1.0, [1, 2]), (-1.0, [3])]
    for call, match in [(lambda: apps.parse_pairs("0-1", 10), "is not I:J"),
                        (lambda: apps.parse_pairs("0:10", 10), "out of range 0..9"),
                        (lambda: apps.parse_arithmetic("1 * 2", 10), "not valid"),
                        (lambda: apps.check_steps(1, "steps"), "use 2..64")]:
        with pytest.raises(UserError, match=match):
            call()


def test_arithmetic_is_the_signed_sum_of_means_plus_noise_rows():
    p = pool(INFOGAN)
    terms = apps.parse_arithmetic("1,2,3 - 4,5 + 6", 20)
    noise = np.ones((3, 10), np.float32)
    out = apps.arithmetic(p, terms, noise)
    expected = p["z"][[1, 2, 3]].mean(0) - p["z"][[4, 5]].mean(0) + p["z"][6]
    np.testing.assert_allclose(out["z"][0], expected, atol=1e-6)
    np.testing.assert_allclose(out["z"][1:], expected + noise, atol=1e-6)
    assert out["codes"].shape == (4, 12)


def test_code_sweep_moves_one_continuous_code_per_block():
    z = pool(INFOGAN, 10)["z"]
    lat = apps.code_sweep(INFOGAN, z, 6)
    codes = lat["codes"].reshape(2, 10, 6, 12)  # [block, category, step, code]
    np.testing.assert_allclose(codes[0, 3, :, 10], np.linspace(-1, 1, 6), atol=1e-6)
    assert (codes[0, :, :, 11] == 0).all() and (codes[1, 7, :, :10].argmax(-1) == 7).all()
    np.testing.assert_array_equal(lat["z"].reshape(2, 10, 6, -1)[1, 5, 2], z[5])
    with pytest.raises(UserError, match="needs an infogan"):
        apps.code_sweep(CGAN, z, 6)


def test_the_model_card_lists_what_a_front_end_offers():
    card = apps.model_card(INFOGAN, "infogan", "unit", (1, 28, 28))
    assert card["codes"] == {"categorical": 10, "continuous": 2, "continuous_range": [-1.0, 1.0]}
    assert card["applications"] == ["class_grid", "interpolation", "arithmetic", "code_sweep"]
    assert apps.model_card(DCGAN, "dcgan", "unit", (3, 64, 64))["applications"] == [
        "interpolation", "arithmetic"]
    assert apps.model_card(CGAN, "cgan", "symmetric", (1, 28, 28))["classes"] == 10
