"""The evaluator on image folders read by the data loader: a folder with class subfolders is
measured with its own classifier (trained once on its split, cached beside the folder's
decoded cache), a flat folder in random-cnn-seed0; through load_real_data, the evaluator the
trainer calls and the evaluate command on a run trained on the folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from eval_images import SHAPES, shapes_set
from PIL import Image
from torch import nn

from gan_accel.cli import evaluate
from gan_accel.data.emoji import DEBIAN_EMOJI_TEST, DEBIAN_FONT
from gan_accel.errors import run_cli
from gan_accel.evaluation import (
    TrainingEvaluator,
    build_real_features,
    evaluate_generator,
    feature_space_for,
    format_table,
    load_real_data,
)
from gan_accel.evaluation import data_classifier as dc
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config


def quiet(*_):
    pass


@pytest.fixture(autouse=True)
def private_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GAN_ACCEL_DATA_MEMORY", raising=False)


@pytest.fixture(autouse=True)
def short_classifier_schedule(monkeypatch):
    """A short classifier schedule (the defaults aim at ~1,500 steps)."""
    monkeypatch.setattr(dc, "BATCH_SIZE", 16)
    monkeypatch.setattr(dc, "TARGET_STEPS", 60)
    monkeypatch.setattr(dc, "MIN_EPOCHS", 1)
    monkeypatch.setattr(dc, "MAX_EPOCHS", 3)


def write_shapes_folder(root: Path, counts: tuple[int, ...], *, labelled: bool = True,
                        channels: int = 3, size: int = 40, seed: int = 0) -> Path:
    """Drawn shapes as PNGs: one subfolder per shape (labelled) or all in ``root`` (flat);
    drawn at ``size`` px so the loader resizes them."""
    data = shapes_set(counts, channels=channels, resolution=size, seed=seed)
    for i, (img, label) in enumerate(zip(data.images, data.labels.tolist(), strict=True)):
        folder = root / SHAPES[label] if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        pixels = img.permute(1, 2, 0).numpy()
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(folder / f"{i:04d}.png")
    return root


class TinyConvG(nn.Module):
    """A small conv generator ``[B, 16] -> [B, 3, 32, 32]`` in [0, 1] (untrained)."""

    def __init__(self, z_dim: int = 16):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 32, 4, 1, 0), nn.ReLU(),  # 4x4
            nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),  # 8x8
            nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(),  # 16x16
            nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Sigmoid())  # 32x32

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


def tiny_g_sampler(G: TinyConvG):
    def sample(n, *, seed, classes=None):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return G(torch.randn(n, G.z_dim, generator=g))

    return sample


@pytest.mark.slow
def test_labelled_folder_uses_its_own_classifier_trained_once(tmp_path):
    root = write_shapes_folder(tmp_path / "shapes", (60, 40, 20))
    lines: list[str] = []
    real = load_real_data("folder", str(root), log=lines.append, resolution=32)
    assert real.image_shape == (3, 32, 32) and real.num_classes == 3 and len(real.pool) == 120
    space = feature_space_for(real, log=lines.append)
    trained = [line for line in lines if "trained on" in line]
    assert len(trained) == 1 and " s (" in trained[0] and "held-out accuracy" in trained[0]
    assert space.name == f"classifier-{real.dataset}-{real.pool.digest[:8]}"
    cached = list(real.cache_dir.glob("classifier-*.safetensors"))
    assert real.pool.digest  # the folder cache's digest keys the classifier
    assert [p.name for p in cached] == [f"classifier-{real.pool.digest[:16]}.safetensors"]
    assert space.class_names == tuple(sorted(SHAPES[:3]))  # the subfolders' names

    again: list[str] = []  # a second evaluation reads the cache: no training
    real2 = load_real_data("folder", str(root), log=again.append, resolution=32)
    space2 = feature_space_for(real2, log=again.append)
    assert not any("trained on" in line or "training" in line for line in again), again
    assert space2.name == space.name

    torch.manual_seed(0)
    ref = build_real_features(space, real, 50, kid_subsets=5)
    res = evaluate_generator(tiny_g_sampler(TinyConvG()), "unit", real_features=ref)
    assert res["feature_space"] == space.name
    assert res["fid"] > res["fid_floor"] > 0 and res["fid_ratio"] > 1
    assert {"precision", "recall", "density", "coverage", "precision_floor",
            "coverage_floor"} <= set(res)
    assert 1 <= res["classes_present"] <= 3 and res["num_classes"] == 3
    assert res["max_share_ratio"] >= 1 and res["max_share_ratio_class"] in SHAPES
    assert space.name in format_table(res).splitlines()[0]

    # the folder changes: it is decoded again (the old cache goes, its classifier with it)
    # under a new digest, and a classifier for the new contents is trained
    Image.fromarray(real.pool.images[0].permute(1, 2, 0).numpy()).save(root / "disc" / "x.png")
    changed: list[str] = []
    real3 = load_real_data("folder", str(root), log=changed.append, resolution=32)
    space3 = feature_space_for(real3, log=changed.append)
    assert len(real3.pool) == 121 and space3.name != space.name
    assert sum("trained on" in line for line in changed) == 1
    assert [p.name for p in real3.cache_dir.glob("classifier-*.safetensors")] == \
        [f"classifier-{real3.pool.digest[:16]}.safetensors"]


def test_unlabelled_folder_is_measured_in_the_random_cnn_space(tmp_path):
    root = write_shapes_folder(tmp_path / "flat", (40, 40), labelled=False)
    real = load_real_data("folder", str(root), log=quiet, resolution=32)
    assert not real.labelled and real.image_shape == (3, 32, 32)
    assert real.probe_train is None and real.probe_test is None
    space = feature_space_for(real, log=quiet)
    assert space.name == "random-cnn-seed0"
    assert not list(real.cache_dir.glob("classifier-*"))  # nothing trained
    ref = build_real_features(space, real, 40, kid_subsets=5)
    res = evaluate_generator(tiny_g_sampler(TinyConvG()), "unit", real_features=ref)
    assert res["feature_space"] == "random-cnn-seed0" and "classes_present" not in res
    assert res["fid"] > res["fid_floor"] > 0 and 0 <= res["coverage"] <= 1
    header = format_table(res).splitlines()[0]
    assert "random-cnn-seed0" in header and "not Inception" in header


@pytest.fixture
def gray_run(tmp_path):
    """A 2-step dcgan run on a labelled 28x28 grayscale folder (the shipped 28x28 nets)."""
    root = write_shapes_folder(tmp_path / "gray", (40, 30, 20), channels=1, size=28)
    cfg = recipe_config("dcgan", dataset="folder", data_dir=str(root), resolution=28, batch_size=8,
                        max_steps=2, out=str(tmp_path / "run"), progress=False, ema=0.0)
    Trainer(cfg, log=quiet).fit()
    return tmp_path / "run", root


@pytest.mark.slow
def test_evaluate_cli_on_a_run_trained_on_a_labelled_folder(gray_run, tmp_path, capsys):
    run, root = gray_run
    out = tmp_path / "m.json"
    argv = ["--checkpoint", str(run), "--n", "40", "--kid-subsets", "2", "--no-probe",
            "--out", str(out)]
    assert run_cli(evaluate.main, argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("trained on") == 1  # its classifier, trained on first evaluation
    doc = json.loads(out.read_text())
    assert doc["feature_space"].startswith("classifier-") and doc["feature_space_kind"] \
        == "classifier"
    assert doc["num_classes"] == 3 and "max_share_ratio" in doc and "coverage" in doc
    assert doc["feature_space"] in printed.splitlines()[[i for i, line in enumerate(
        printed.splitlines()) if line.startswith("metrics in")][0]]
    assert run_cli(evaluate.main, argv) == 0  # the cached classifier: no second training
    assert "trained on" not in capsys.readouterr().out
    assert json.loads(out.read_text())["fid"] == doc["fid"]


def test_training_evaluator_reads_the_folder_from_the_run_config(tmp_path):
    flat = write_shapes_folder(tmp_path / "flat", (100, 100), labelled=False, channels=1, size=28)
    cfg = recipe_config("lsgan", dataset="folder", data_dir=str(flat), resolution=28, batch_size=8,
                        max_steps=2, out=str(tmp_path / "run"), progress=False, ema=0.0,
                        eval_samples=100)
    trainer = Trainer(cfg, log=quiet)
    evaluator = TrainingEvaluator(trainer.cfg, kid_subsets=2)
    out = evaluator(trainer)
    assert out["feature_space"] == "random-cnn-seed0" and "classes_present" not in out
    assert out["fid"] > out["fid_floor"] > 0


def test_train_classifier_ahead_of_time_is_used_by_the_evaluation(tmp_path, capsys):
    root = write_shapes_folder(tmp_path / "shapes", (30, 20, 20), size=32)
    argv = ["train-classifier", "--dataset", "folder", "--data-dir", str(root),
            "--resolution", "32", "--epochs", "1"]
    assert run_cli(evaluate.main, argv) == 0
    assert capsys.readouterr().out.count("trained on 56 images") == 1  # 80% of 30, 20, 20
    lines: list[str] = []
    real = load_real_data("folder", str(root), log=lines.append, resolution=32)
    space = feature_space_for(real, log=lines.append)
    assert not any("training" in line or "trained on" in line for line in lines), lines
    assert space.meta["command"] == "python -m gan_accel.evaluate " + " ".join(argv)
    flat = write_shapes_folder(tmp_path / "flat", (10, 10), labelled=False, size=32)
    code = run_cli(evaluate.main, ["train-classifier", "--dataset", "folder", "--data-dir",
                                   str(flat)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "has no labels" in err, err


emoji_installed = pytest.mark.skipif(
    not os.environ.get("CI") and not (DEBIAN_FONT.is_file() and DEBIAN_EMOJI_TEST.is_file()),
    reason="needs Debian's fonts-noto-color-emoji and unicode-data (CI installs them)")


@pytest.mark.slow
@emoji_installed
def test_emoji_is_measured_with_its_own_classifier_by_group(monkeypatch):
    monkeypatch.setattr(dc, "MAX_EPOCHS", 1)  # the plumbing, not the accuracy
    real = load_real_data("emoji", log=quiet, resolution=32)
    assert real.image_shape == (3, 32, 32) and real.num_classes == 9 and len(real.pool) == 1870
    space = feature_space_for(real, log=quiet)
    assert space.name.startswith("classifier-emoji-") and len(space.class_names) == 9
    assert "Smileys & Emotion" in space.class_names and "Flags" in space.class_names
    ref = build_real_features(space, real, 200, kid_subsets=5)
    res = evaluate_generator(tiny_g_sampler(TinyConvG()), "unit", real_features=ref)
    assert res["num_classes"] == 9 and res["max_share_ratio_class"] in space.class_names
    assert res["fid"] > res["fid_floor"] > 0 and res["feature_space"] == space.name
