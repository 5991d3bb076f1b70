"""Evaluation of data without a shipped classifier (an image folder, emoji), on image sets
drawn in the test: labelled data in the space of a classifier trained once on its own split
and cached, unlabelled data in random-cnn-seed0; every result names its space."""

from __future__ import annotations

import pytest
import torch
from eval_images import shapes_set

from gan_accel.errors import UserError
from gan_accel.evaluation import (
    TrainingEvaluator,
    build_real_features,
    evaluate_generator,
    evaluate_variant,
    feature_space_for,
    format_table,
    real_data_from_images,
)
from gan_accel.evaluation import data_classifier as dc
from gan_accel.training.trainer import Trainer
from gan_accel.variants import build_variant, recipe_config

N = 150  # generated / real images per comparison


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def small_training():
    """A short classifier schedule for tests (the defaults aim at ~1,500 steps)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dc, "BATCH_SIZE", 16)
        mp.setattr(dc, "TARGET_STEPS", 100)
        mp.setattr(dc, "MIN_EPOCHS", 1)
        yield


@pytest.fixture
def one_epoch(small_training, monkeypatch):
    """Where only the classifier's existence matters, not its accuracy."""
    monkeypatch.setattr(dc, "MAX_EPOCHS", 1)


@pytest.fixture(scope="module")
def labelled(small_training, tmp_path_factory):
    """An unbalanced labelled 3x32x32 set (50/30/20%), its classifier trained on first use."""
    data = shapes_set((300, 180, 120), channels=3, resolution=32, seed=0)
    cache = tmp_path_factory.mktemp("cache")
    real = real_data_from_images(data, cache, probe_train=60, probe_test=30)
    lines: list[str] = []
    t0 = torch.get_rng_state()
    space = feature_space_for(real, log=lines.append)
    assert torch.equal(torch.get_rng_state(), t0)  # training the classifier left the RNG alone
    ref = build_real_features(space, real, N, kid_subsets=10)
    return data, cache, real, space, ref, lines


def pool_sampler(images_u8: torch.Tensor, labels: torch.Tensor, weights=None):
    """A fake ``sample_fn`` drawing real images: each once (as many as there are), or class
    ``c`` with probability ``weights[c]``."""

    def sample(n, *, seed, classes=None):
        g = torch.Generator().manual_seed(seed + 1000)
        if weights is None:
            idx = torch.randperm(len(labels), generator=g)[:n]
        else:
            cls = torch.multinomial(torch.tensor(weights, dtype=torch.float), n, True,
                                    generator=g)
            idx = torch.stack([(labels == c).nonzero().flatten()[
                torch.randint(0, int((labels == c).sum()), (1,), generator=g)][0]
                for c in cls.tolist()])
        return images_u8[idx].float() / 255.0

    return sample


def unused(ref, data):
    """The images the real features and their floors did not draw."""
    mask = torch.ones(len(data), dtype=torch.bool)
    mask[ref.index] = False
    return data.images[mask], data.labels[mask]


@pytest.mark.slow  # with the module fixture's classifier training: over 5 s
def test_classifier_is_trained_once_on_first_evaluation_and_cached(labelled):
    data, cache, real, space, _, lines = labelled
    digest = dc.data_digest(data)
    assert space.name == f"classifier-shapes-{digest[:8]}"
    assert space.class_names == ("disc", "hbar", "vbar") and space.net_shape == (3, 32, 32)
    assert len(lines) == 2 and "training one on its training split" in lines[0]
    assert "trained on 480 images in" in lines[1] and "held-out accuracy" in lines[1]
    path = cache / f"classifier-{digest}.safetensors"
    assert path.is_file() and f"cached at {path}" in lines[1]
    meta = space.meta
    assert int(meta["heldout_n"]) == 120 and int(meta["train_n"]) == 480  # 20% of each class
    assert float(meta["heldout_accuracy"]) >= 0.7  # chance: 50% (the largest class)
    again: list[str] = []
    space2 = feature_space_for(real, log=again.append)
    assert again == [] and space2.name == space.name  # read from the cache, not retrained
    x = data.images[:8]
    assert torch.equal(space2.extract(x)[0], space.extract(x)[0])


@pytest.mark.slow  # with the module fixture's classifier training: over 5 s
def test_real_images_score_at_the_floors_and_cover_every_class(labelled):
    data, _, _, _, ref, _ = labelled
    images, labels = unused(ref, data)
    res = evaluate_generator(pool_sampler(images, labels), "unit", real_features=ref)
    assert res["feature_space"] == ref.space.name and res["feature_space_kind"] == "classifier"
    assert res["fid_ratio"] < 2.0, res["fid_ratio"]
    assert res["classes_present"] == res["num_classes"] == 3 and not res["collapsed"]
    assert res["max_share_ratio"] < 1.5 and res["max_share_ratio_floor"] < 1.5
    for key in ("precision", "recall", "density", "coverage"):
        assert res[f"{key}_floor"] > 0.5 and res[key] > 0.5 * res[f"{key}_floor"], key
    assert res["class_names"] == ["disc", "hbar", "vbar"]
    table = format_table(res)
    assert table.splitlines()[0].startswith(f"metrics in feature space {ref.space.name}")
    assert "3/3" in table and "precision (k=3)" in table


@pytest.mark.slow  # with the module fixture's classifier training: over 5 s
def test_one_class_and_unbalanced_generators_are_flagged(labelled):
    data, _, _, _, ref, _ = labelled
    images, labels = unused(ref, data)
    one = evaluate_generator(pool_sampler(images, labels, (0.0, 0.0, 1.0)), "unit",
                             real_features=ref)  # only the 20% class
    assert one["collapsed"] and one["classes_present"] == 1 and one["missing_classes"] == [0, 1]
    assert one["largest_class_share"] > 0.9 and one["max_share_ratio"] > 4
    assert one["recall"] < 0.4 * one["recall_floor"], (one["recall"], one["recall_floor"])
    assert one["coverage"] < 0.4 * one["coverage_floor"]
    assert one["fid_ratio"] > 5
    # the 20% class gets 60% of the samples (3x its real share)
    even = evaluate_generator(pool_sampler(images, labels, (0.2, 0.2, 0.6)), "unit",
                              real_features=ref)
    assert even["classes_present"] == 3
    assert even["max_share_ratio"] > 2.0 and even["max_share_ratio_class"] == "vbar"


@pytest.mark.slow  # with the module fixture's classifier training: over 5 s
def test_shape_mismatch_is_a_user_error(labelled):
    ref = labelled[4]
    with pytest.raises(UserError, match=r"expected \(150, 3, 32, 32\)"):
        evaluate_generator(lambda n, *, seed, classes=None: torch.rand(n, 1, 28, 28), "unit",
                           real_features=ref)


@pytest.mark.slow  # two classifiers trained: over 5 s
def test_changed_data_gets_a_new_classifier_and_the_stale_one_goes(one_epoch, tmp_path):
    data = shapes_set((40, 40), channels=1, resolution=28, seed=3)
    real = real_data_from_images(data, tmp_path)
    first = feature_space_for(real, log=quiet)
    data.images[0, 0, 0, 0] ^= 1  # one pixel of one image
    changed = feature_space_for(real_data_from_images(data, tmp_path), log=quiet)
    assert changed.name != first.name
    assert [p.name for p in tmp_path.iterdir()] == [
        f"classifier-{dc.data_digest(data)}.safetensors"]


def test_corrupt_cached_classifier_is_a_one_line_user_error(one_epoch, tmp_path):
    data = shapes_set((30, 30), channels=1, resolution=28, seed=4)
    real = real_data_from_images(data, tmp_path)
    feature_space_for(real, log=quiet)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not safetensors")
    with pytest.raises(UserError, match=f"delete {path}") as err:
        feature_space_for(real, log=quiet)
    assert "\n" not in str(err.value)


def test_unlabelled_data_is_measured_in_the_random_cnn_space(tmp_path):
    data = shapes_set((150, 150, 150), channels=3, resolution=32, seed=1, labelled=False,
                      name="flat")
    real = real_data_from_images(data, tmp_path)
    assert not real.labelled and real.probe_train is None
    space = feature_space_for(real)
    assert space.name == "random-cnn-seed0"
    ref = build_real_features(space, real, N, kid_subsets=10)
    images, labels = unused(ref, data)
    res = evaluate_generator(pool_sampler(images, labels), "unit", real_features=ref)
    assert res["feature_space"] == "random-cnn-seed0" and "classes_present" not in res
    assert res["fid_ratio"] < 2.0 and res["recall"] > 0.5 * res["recall_floor"]
    header = format_table(res).splitlines()[0]
    assert "random-cnn-seed0" in header and "not Inception" in header
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing cached
    with pytest.raises(UserError, match="no labels.*--feature-space random-cnn"):
        feature_space_for(real, "classifier")


@pytest.mark.slow  # with the module fixture's classifier training: over 5 s
def test_labelled_data_can_be_measured_in_the_random_cnn_space_too(labelled):
    real = labelled[2]
    space = feature_space_for(real, "random-cnn")
    assert space.name == "random-cnn-seed0" and space.num_classes == 0


# --------------------------------------------------------------------------- a trained variant


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """A labelled 1x28x28 set the seed's 28x28 nets can be measured on (3 classes), with a
    classifier of one epoch (what is measured here is the plumbing, not its accuracy)."""
    data = shapes_set((120, 80, 60), channels=1, resolution=28, seed=2, name="folder",
                      background=0.0)
    cache = tmp_path_factory.mktemp("digits")
    dc.train_data_classifier(data, cache, epochs=1, log=quiet)
    return real_data_from_images(data, cache, probe_train=80, probe_test=28)


@pytest.mark.slow  # with the module fixture's classifier and the D probe: over 5 s
def test_evaluate_variant_on_a_labelled_folder(digit_folder):
    torch.manual_seed(0)
    variant = build_variant(recipe_config("dcgan")).eval()
    res = evaluate_variant(variant, "folder", 60, real=digit_folder, kid_subsets=5,
                           probe_epochs=10)
    assert res["dataset"] == "folder" and res["feature_space"].startswith("classifier-folder-")
    assert res["classifier"] == "folder" and 0 <= res["classifier_heldout_accuracy"] <= 1
    assert res["num_classes"] == 3 and res["fid"] > res["fid_floor"] > 0
    assert res["d_probe_test_n"] == 28 and 0 <= res["d_probe_accuracy"] <= 1


def test_evaluate_variant_on_an_unlabelled_folder(tmp_path):
    data = shapes_set((60, 60), channels=1, resolution=28, seed=5, labelled=False,
                      name="folder", background=0.0)
    torch.manual_seed(0)
    variant = build_variant(recipe_config("dcgan")).eval()
    res = evaluate_variant(variant, "folder", 50, real=real_data_from_images(data, tmp_path),
                           kid_subsets=5)
    assert res["feature_space"] == "random-cnn-seed0" and "d_probe_accuracy" not in res
    assert "classifier" not in res and "classes_present" not in res
    assert res["fid"] > res["fid_floor"] > 0 and 0 <= res["precision"] <= 1


@pytest.mark.slow  # with the module fixture's classifier and the D probe: over 5 s
def test_training_evaluator_on_a_labelled_folder(digit_folder, tmp_path):
    """The evaluator the trainer calls every --eval-every steps, on a folder's real data."""
    from helpers import tiny_mnist

    tiny_mnist(tmp_path / "data", n=64, seed=1)
    cfg = recipe_config("infogan", dataset="mnist", data_dir=str(tmp_path / "data"),
                        batch_size=8, out=str(tmp_path / "run"), progress=False,
                        eval_samples=100, ema=0.0)
    evaluator = TrainingEvaluator(cfg, kid_subsets=5, code_accuracy=True, real=digit_folder)
    trainer = Trainer(cfg, log=quiet, evaluator=evaluator)
    state = torch.get_rng_state()
    out = evaluator(trainer)
    assert torch.equal(torch.get_rng_state(), state)
    assert out["feature_space"].startswith("classifier-folder-") and out["num_classes"] == 3
    assert {"fid", "precision", "coverage", "max_share_ratio", "code_accuracy_generated",
            "code_accuracy"} <= set(out)
    assert evaluator(trainer)["fid"] == out["fid"]  # cached real features, fixed latents
    with pytest.raises(UserError, match="--eval-samples 131 is out of range"):
        cfg.eval_samples = 131
        TrainingEvaluator(cfg, real=digit_folder)
