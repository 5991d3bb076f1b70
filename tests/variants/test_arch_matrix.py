"""Every (variant, architecture, resolution, channels) trains: a few Trainer steps each, eager,
at tiny widths on tiny random images; one representative per architecture compiled with
``fullgraph=True`` and checked against eager; the improved-GAN tricks on every architecture;
a run saves the concrete nets it trained and a checkpoint rebuilds them.

The Trainer's data step is replaced by random images of the run's shape (the images' content
does not matter to whether a step runs; the folder loader has its own tests).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config

from gan_accel.checkpoints import load_trained
from gan_accel.data import BatchIterator, ImageSet
from gan_accel.models import Arch
from gan_accel.training.trainer import Trainer
from gan_accel.variants import VARIANTS, recipe_config

BATCH, STEPS, WIDTH, IMAGES = 4, 2, 4, 8


def quiet(*_):
    pass


def random_images(self) -> None:
    """Stands in for ``Trainer._setup_data``: IMAGES random images of the config's shape."""
    cfg = self.cfg
    gen = torch.Generator().manual_seed(cfg.seed)
    images = torch.randint(0, 256, (IMAGES, cfg.channels, cfg.resolution, cfg.resolution),
                           dtype=torch.uint8, generator=gen)
    labels = torch.arange(IMAGES) % max(cfg.num_classes, 1)
    self.data = ImageSet("random", images, labels, "random images", max(cfg.num_classes, 1))
    x = self.variant.output_range.from_unit(images.float() / 255)
    self.loader = BatchIterator(x, labels, cfg.batch_size, cfg.seed)


@pytest.fixture(autouse=True)
def _random_data(monkeypatch):
    monkeypatch.setattr(Trainer, "_setup_data", random_images)


def combos():
    for name, cls in VARIANTS.items():
        for arch in Arch:
            if arch not in cls.archs:
                continue
            for side in arch.resolutions:
                for channels in (1, 3):
                    yield name, arch.value, side, channels


COMBOS = list(combos())


def make(tmp_path, name, arch, side, channels, **kw):
    cfg = recipe_config(name, arch=arch, resolution=side, channels=channels, ngf=WIDTH,
                        ndf=WIDTH, batch_size=BATCH, out=str(tmp_path / "run"), progress=False,
                        kernels="torch", **{"ema": 0, **kw})
    return Trainer(cfg, log=quiet)


def run_steps(trainer, steps=STEPS) -> list[dict[str, float]]:
    rows = []
    for real, labels in list(trainer.loader.epoch(0))[:steps]:
        rows.append({k: float(v) for k, v in trainer.train_step(real, labels).items()})
    trainer.check_finite()
    return rows


def test_the_matrix_covers_every_pair_that_makes_sense():
    assert len(COMBOS) == 166  # 8 variants x 10 (arch, size) + began x 3, each in 1 and 3 channels
    assert {(n, a) for n, a, _, _ in COMBOS if a == "began"} == {("began", "began")}


@pytest.mark.parametrize("name,arch,side,channels", COMBOS,
                         ids=[f"{n}-{a}-{s}-{c}ch" for n, a, s, c in COMBOS])
def test_every_combination_trains(tmp_path, name, arch, side, channels):
    t = make(tmp_path, name, arch, side, channels)
    assert (t.cfg.arch, t.cfg.resolution, t.cfg.channels) == (arch, side, channels)
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


@pytest.mark.parametrize("arch", SCALED_ARCHS)
@pytest.mark.parametrize("trick", TRICKS, ids=lambda t: next(iter(t)))
def test_improved_gan_tricks_train_on_every_architecture(tmp_path, arch, trick):
    t = make(tmp_path, "dcgan", arch, 32, 3, **trick)
    rows = run_steps(t)
    assert "loss_d" in rows[0] and "loss_g" in rows[0]


@pytest.mark.parametrize("arch", SCALED_ARCHS)
def test_infogan_options_train_on_every_architecture(tmp_path, arch):
    for options in (dict(info_phase="third", info_cont_loss="nll", info_head="fc",
                         info_categories=5),
                    dict(info_phase="joint", info_cluster_weight=1.0, supervised_code=True)):
        t = make(tmp_path, "infogan", arch, 64, 3, **options)
        assert t.variant.latent.cat_dim == options.get("info_categories", 10)
        rows = run_steps(t)
        assert "info_cat" in rows[0], rows[0]


def test_began_trains_with_augmentation_at_64(tmp_path):
    t = make(tmp_path, "began", "began", 64, 3, augment="translation,color")
    rows = run_steps(t, 3)
    assert all("k_t" in r and "convergence" in r for r in rows)


# one per architecture; the tiny nets are compiled in tests/variants/test_variants.py
COMPILED = [("cgan", "mlp", 32, 3), ("infogan", "dcgan", 32, 3), ("lsgan", "sngan-cnn", 32, 1),
            ("wgan-gp", "resnet", 32, 3), ("began", "began", 32, 3)]


@pytest.mark.parametrize("name,arch,side,channels", COMPILED,
                         ids=[f"{n}-{a}-{s}-{c}ch" for n, a, s, c in COMPILED])
def test_one_compiled_run_per_architecture_matches_eager(tmp_path, name, arch, side, channels):
    """Same seed and init, eager vs ``--compile`` (fullgraph): the first step's logs agree to
    1e-4 relative (both start from the same weights), and the compiled run trains on."""
    runs = []
    for compiled in (False, True):
        torch._dynamo.reset()
        with inductor_config.patch(fallback_random=True):  # WGAN-GP's eps drawn as eager
            t = make(tmp_path / str(compiled), name, arch, side, channels, compile=compiled,
                     seed=3)
            runs.append(run_steps(t))
    (eager, compiled) = runs
    for key, value in eager[0].items():
        assert compiled[0][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert len(compiled) == STEPS


def test_a_run_saves_its_concrete_nets_and_a_checkpoint_rebuilds_them(tmp_path):
    cfg = recipe_config("sngan", resolution=32, channels=3, ngf=WIDTH, ndf=WIDTH,
                        batch_size=BATCH, max_steps=1, out=str(tmp_path / "run"),
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
