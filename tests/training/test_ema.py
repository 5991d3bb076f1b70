"""The EMA generator: its decay, its BatchNorm statistics, and that it is what gets sampled."""

from __future__ import annotations

import copy

import pytest
import torch

from gan_accel.training.ema import GeneratorEMA, ema_beta, recalibrate_batch_norm
from gan_accel.variants import build_variant, recipe_config


def test_half_life_in_images():
    # after half_life images (at a fixed batch), the old weights count half
    beta = ema_beta(10.0, 0.0, images_seen=10**6, batch_images=64)
    assert beta ** (10_000 / 64) == pytest.approx(0.5)
    # early in a run the half-life is capped at rampup x the images seen so far
    early = ema_beta(10.0, 0.05, images_seen=6_400, batch_images=64)
    assert early ** (320 / 64) == pytest.approx(0.5)


def test_ema_is_on_by_default_and_is_the_sampling_generator(tmp_path):
    cfg = recipe_config("dcgan")
    assert cfg.ema > 0  # every preset keeps an EMA generator unless --ema 0
    from gan_accel.training.trainer import Trainer

    t = Trainer(recipe_config("dcgan", max_steps=3, out=str(tmp_path / "r"),
                                   progress=False), log=lambda *_: None)
    t.fit()
    assert t.sampling_generator() is t.ema.module
    off = Trainer(recipe_config("dcgan", max_steps=1, out=str(tmp_path / "o"),
                                     progress=False, ema=0.0), log=lambda *_: None)
    assert off.ema is None and off.sampling_generator() is off.variant.G


def test_the_average_gets_batchnorm_statistics_of_its_own_weights():
    """Averaged weights with G's running statistics give wrong images (eval output far from
    what the same weights give on their own batch statistics); re-estimated, they match."""
    torch.manual_seed(0)
    v = build_variant(recipe_config("dcgan"))
    G = v.G
    ema = GeneratorEMA(G, half_life_kimg=1.0, rampup=0.0)
    with torch.no_grad():  # make the average differ from G, as after training
        for p in ema.module.parameters():
            p.mul_(1.5)
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.fill_(0.3)
                m.running_var.fill_(2.0)
    ema.module.load_state_dict({**ema.module.state_dict(),
                                **{k: b for k, b in G.state_dict().items() if "running" in k}})
    ema._stale = True
    z = v.latent.sample(2048, "cpu", torch.Generator().manual_seed(1))

    def gap(module):
        m = copy.deepcopy(module)
        with torch.no_grad():
            batch_stats = m.train()(**z)
            return float((m.eval()(**z) - batch_stats).abs().mean())

    before = gap(ema.module)
    after = gap(ema.calibrated(v.latent))
    assert after < 0.01 < before, (before, after)


def test_recalibration_does_not_touch_the_global_rng():
    v = build_variant(recipe_config("dcgan"))
    torch.manual_seed(5)
    state = torch.get_rng_state()
    recalibrate_batch_norm(v.G, v.latent, "cpu")
    assert torch.equal(state, torch.get_rng_state())
