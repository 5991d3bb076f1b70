"""Every (variant, architecture, resolution, channels) trains: a few Trainer steps each, eager,
at tiny widths on a tiny random image folder (three classes of RGB pictures, converted to
the run's channels and resized to its resolution by the folder loader); one representative
per architecture compiled with ``fullgraph=True`` and checked against eager; the improved-GAN
tricks on every architecture; a run saves the concrete nets it trained and a checkpoint
rebuilds them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config

from gan_accel.checkpoints import load_trained
from gan_accel.cli.train import main as train_main
from gan_accel.errors import run_cli
from gan_accel.models import Arch
from gan_accel.training.trainer import Trainer
from gan_accel.variants import VARIANTS, recipe_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from image_folders import rgb_folder  # noqa: E402

BATCH, STEPS, WIDTH, PER_CLASS = 4, 2, 4, 3
CLASSES = ("a", "b", "c")  # three, so cgan's class count visibly comes from the folder


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """9 random 40x40 RGB pictures in 3 class subfolders; each (resolution, channels) is
    decoded into the cache beside them once, by the first run that asks for it."""
    return rgb_folder(tmp_path_factory.mktemp("images"), PER_CLASS, classes=CLASSES)


# forms whose few steps take over the per-test budget: in the slow set only
COSTLY = {(Arch.BEGAN, 64)}


def combos():
    """Every (variant, arch, resolution, channels). The default command runs one per
    (variant, arch) pair, each architecture's forms (resolution, channels) dealt round the
    variants that use it so every form runs (all of them when it has fewer users than forms);
    the rest carry ``slow`` (run by .ci/run)."""
    for arch in Arch:
        users = [name for name, cls in VARIANTS.items() if arch in cls.archs]
        forms = [(side, channels) for side in arch.resolutions for channels in (1, 3)]
        for i, name in enumerate(users):
            fast = {forms[i % len(forms)]}
            if i == len(users) - 1:
                fast |= set(forms[len(users):])
            for form in forms:
                marks = () if form in fast and (arch, form[0]) not in COSTLY else \
                    (pytest.mark.slow,)
                yield pytest.param(name, arch.value, *form, marks=marks,
                                   id=f"{name}-{arch.value}-{form[0]}-{form[1]}ch")


COMBOS = list(combos())


def make(tmp_path, folder, name, arch, side, channels, **kw):
    cfg = recipe_config(name, dataset="folder", data_dir=str(folder), arch=arch,
                        resolution=side, channels=channels, ngf=WIDTH, ndf=WIDTH,
                        batch_size=BATCH, out=str(tmp_path / "run"), progress=False,
                        kernels="torch", **{"ema": 0, **kw})
    return Trainer(cfg, log=quiet)


def run_steps(trainer, steps=STEPS) -> list[dict[str, float]]:
    rows = []
    for real, labels in list(trainer.loader.epoch(0))[:steps]:
        rows.append({k: float(v) for k, v in trainer.train_step(real, labels).items()})
    trainer.check_finite()
    return rows


def test_the_matrix_covers_every_pair_that_makes_sense():
    values = [p.values for p in COMBOS]
    assert len(values) == 166  # 8 variants x 10 (arch, size) + began x 3, in 1 and 3 channels
    assert {(n, a) for n, a, _, _ in values if a == "began"} == {("began", "began")}
    fast = [p.values for p in COMBOS if not p.marks]
    assert {(n, a) for n, a, _, _ in fast} == {(n, a) for n, a, _, _ in values}
    assert len(fast) == 43  # 42 pairs, BEGAN's two 32x32 forms (its 64x64 ones are slow)
    assert {(a, s, c) for _, a, s, c in fast} == \
        {(a, s, c) for _, a, s, c in values if (Arch(a), s) not in COSTLY}


@pytest.mark.parametrize("name,arch,side,channels", COMBOS)
def test_every_combination_trains(tmp_path, folder, name, arch, side, channels):
    t = make(tmp_path, folder, name, arch, side, channels)
    assert (t.cfg.arch, t.cfg.resolution, t.cfg.channels) == (arch, side, channels)
    assert t.cfg.num_classes == len(CLASSES)  # cgan's embeddings: the folder's classes
    before = {k: v.clone() for k, v in t.variant.state_dict().items()}
    rows = run_steps(t)
    assert all(v == v and abs(v) != float("inf") for r in rows for v in r.values())
    assert "loss_d" in rows[0] and "loss_g" in rows[0], rows[0]
    after = t.variant.state_dict()
    for net in ("G.", "D."):
        assert any(not torch.equal(after[k], before[k]) for k in after
                   if k.startswith(net) and after[k].is_floating_point()), f"{net} did not move"
    with torch.no_grad():
        img = t.variant.G.eval()(**t.fixed_latent)
    assert img.shape[1:] == (channels, side, side)


TRICKS = [dict(minibatch_disc=True), dict(feature_matching=True),
          dict(virtual_batch_norm=True), dict(historical_averaging=0.1),
          dict(augment="translation,cutout,color,affine")]
SCALED_ARCHS = ["mlp", "dcgan", "sngan-cnn", "resnet"]


def dealt(options: list[dict], archs: list[str]):
    """Every (options, arch); the default command runs option set i on arch i mod len(archs)
    (each option set at least once), the rest carry ``slow``."""
    for i, opts in enumerate(options):
        for j, arch in enumerate(archs):
            marks = () if j == i % len(archs) else (pytest.mark.slow,)
            yield pytest.param(opts, arch, marks=marks, id=f"{next(iter(opts))}-{arch}")


@pytest.mark.parametrize("trick,arch", list(dealt(TRICKS, SCALED_ARCHS)))
def test_improved_gan_tricks_train_on_every_architecture(tmp_path, folder, trick, arch):
    t = make(tmp_path, folder, "dcgan", arch, 32, 3, **trick)
    rows = run_steps(t)
    assert "loss_d" in rows[0] and "loss_g" in rows[0]


INFO_OPTIONS = [dict(info_phase="third", info_cont_loss="nll", info_head="fc",
                     info_categories=5, info_q="shared", info_q_real_only=False,
                     info_mode_seeking=0.0),
                dict(info_phase="joint", info_cluster_weight=1.0, supervised_code=True)]


@pytest.mark.parametrize("options,arch", list(dealt(INFO_OPTIONS, SCALED_ARCHS)))
def test_infogan_options_train_on_every_architecture(tmp_path, folder, options, arch):
    t = make(tmp_path, folder, "infogan", arch, 32, 3, **options)
    assert t.variant.latent.cat_dim == options.get("info_categories", 10)
    rows = run_steps(t)
    assert "info_cat" in rows[0], rows[0]


def test_began_trains_with_augmentation(tmp_path, folder):
    t = make(tmp_path, folder, "began", "began", 32, 3, augment="translation,color")
    rows = run_steps(t, 3)
    assert all("k_t" in r and "convergence" in r for r in rows)


# one per architecture; the tiny nets are compiled in tests/variants/test_variants.py
COMPILED = [("cgan", "mlp", 32, 3), ("infogan", "dcgan", 32, 3), ("lsgan", "sngan-cnn", 32, 1),
            ("wgan-gp", "resnet", 32, 3), ("began", "began", 32, 3)]


@pytest.mark.slow  # compiling takes longer than the per-test budget
@pytest.mark.parametrize("name,arch,side,channels", COMPILED,
                         ids=[f"{n}-{a}-{s}-{c}ch" for n, a, s, c in COMPILED])
def test_one_compiled_run_per_architecture_matches_eager(tmp_path, folder, name, arch, side,
                                                         channels):
    """Same seed and init, eager vs ``--compile`` (fullgraph): the first step's logs agree to
    1e-4 relative (both start from the same weights), and the compiled run trains on."""
    runs = []
    for compiled in (False, True):
        torch._dynamo.reset()
        with inductor_config.patch(fallback_random=True):  # WGAN-GP's eps drawn as eager
            t = make(tmp_path / str(compiled), folder, name, arch, side, channels,
                     compile=compiled, seed=3)
            runs.append(run_steps(t))
    (eager, compiled) = runs
    for key, value in eager[0].items():
        assert compiled[0][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert len(compiled) == STEPS


def test_a_run_saves_its_concrete_nets_and_a_checkpoint_rebuilds_them(tmp_path, folder):
    cfg = recipe_config("sngan", dataset=str(folder), resolution=32, channels=3, ngf=WIDTH,
                        ndf=WIDTH, batch_size=BATCH, max_steps=1, out=str(tmp_path / "run"),
                        progress=False, kernels="torch", ema=0)
    assert (cfg.arch, cfg.latent_dim) == ("auto", 0)
    t = Trainer(cfg, log=quiet)
    t.fit()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: saved[k] for k in ("arch", "ngf", "ndf", "latent_dim", "resolution", "channels")} \
        == {"arch": "sngan-cnn", "ngf": WIDTH, "ndf": WIDTH, "latent_dim": 128, "resolution": 32,
            "channels": 3}
    variant, _ = load_trained(tmp_path / "run")
    for k, v in t.variant.state_dict().items():
        torch.testing.assert_close(variant.state_dict()[k], v, rtol=0, atol=0)
    z = variant.latent.sample(2, "cpu")
    assert variant.G(**z).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("name,arch", [("sngan", "sngan-cnn"), ("wgan-gp", "resnet"),
                                       ("lsgan", "dcgan")])
def test_a_folder_alone_picks_the_variants_own_architecture(tmp_path, folder, name, arch):
    """No --arch, --resolution or --channels: the folder's 64x64 RGB and the variant's paper
    architecture, and a step trains."""
    cfg = recipe_config(name, dataset=str(folder), ngf=WIDTH, ndf=WIDTH, batch_size=BATCH,
                        out=str(tmp_path / "run"), progress=False, ema=0)
    t = Trainer(cfg, log=quiet)
    assert (t.cfg.arch, t.cfg.resolution, t.cfg.channels) == (arch, 64, 3)
    run_steps(t, 1)


def test_the_train_command_on_a_folder_alone_records_the_concrete_nets(tmp_path, folder):
    out = tmp_path / "run"
    code = run_cli(train_main, ["--model", "dcgan", "--dataset", str(folder), "--ngf", "4",
                                "--ndf", "4", "--batch-size", str(BATCH), "--max-steps", "2",
                                "--ema", "0", "--no-progress", "--out", str(out)])
    assert code == 0
    saved = json.loads((out / "config.json").read_text())
    assert {k: saved[k] for k in ("arch", "resolution", "channels", "ngf", "ndf",
                                  "latent_dim")} == \
        {"arch": "dcgan", "resolution": 64, "channels": 3, "ngf": 4, "ndf": 4, "latent_dim": 100}


def test_cgan_needs_a_labelled_folder_and_enough_classes(tmp_path, folder, capsys):
    flat = rgb_folder(tmp_path / "flat", 4, classes=())
    for data, extra, message in [
            (flat, [], "--model cgan is conditioned on class labels"),
            (folder, ["--num-classes", "2"], "--num-classes 2 is below the 3 classes")]:
        out = tmp_path / "run"
        code = run_cli(train_main, ["--model", "cgan", "--dataset", str(data), "--resolution",
                                    "32", "--batch-size", str(BATCH), "--no-progress", "--out",
                                    str(out), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and "\n" not in err, err
        assert not (out / "config.json").exists()
