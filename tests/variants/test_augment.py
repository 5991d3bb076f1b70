"""Differentiable augmentation: what D sees, and what the transforms guarantee."""

from __future__ import annotations

import pytest
import torch

from gan_accel.errors import UserError
from gan_accel.ranges import OutputRange
from gan_accel.variants import Batch, build_variant, recipe_config
from gan_accel.variants.augment import (
    PARAMS,
    VIEWS,
    Augment,
    Transform,
    diff_augment,
    parse_policy,
)

ALL = tuple(Transform)


def _u(b: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(b, PARAMS, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_policy_parsing_and_config_validation():
    assert parse_policy("cutout,translation") == (Transform.TRANSLATION, Transform.CUTOUT)
    assert parse_policy("none") == ()
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        parse_policy("translation,rotate")
    with pytest.raises(UserError, match="--augment"):
        recipe_config("dcgan", augment="blur")


@pytest.mark.parametrize("output_range", list(OutputRange))
def test_pixels_moved_or_cut_in_are_the_background(output_range):
    """An empty image stays empty under translation and cutout: the fill is the range's
    background (0 for [0, 1], -1 for [-1, 1]), not a grey that would mark fakes or reals."""
    lo, _ = output_range.bounds
    blank = torch.full((16, 1, 28, 28), lo)
    out = diff_augment(blank, _u(16), (Transform.TRANSLATION, Transform.CUTOUT,
                                       Transform.AFFINE), output_range)
    assert torch.equal(out, blank)
    # and a white image gets background pixels where translation uncovers the border
    white = torch.ones(16, 1, 28, 28)
    shifted = diff_augment(white, _u(16, 1), (Transform.TRANSLATION,), output_range)
    assert (shifted == lo).any() and set(shifted.unique().tolist()) <= {lo, 1.0}
    turned = diff_augment(white, _u(16, 1), (Transform.AFFINE,), output_range)
    assert turned.min() < 1.0 and turned.min() >= lo - 1e-6  # corners come in as background


@pytest.mark.parametrize("output_range", list(OutputRange))
def test_brightness_is_a_share_of_the_range_width(output_range):
    lo, hi = output_range.bounds
    x = torch.full((256, 1, 4, 4), (lo + hi) / 2)
    out = diff_augment(x, _u(256, 2), (Transform.COLOR,), output_range)
    shift = (out - x).flatten(1)[:, 0]  # a flat image: contrast does nothing, brightness moves it
    assert shift.abs().max() <= 0.25 * (hi - lo) + 1e-6
    assert shift.abs().max() > 0.2 * (hi - lo)  # and it really moves that far


def test_probability_zero_is_the_identity_and_one_changes_every_image():
    x = torch.rand(32, 1, 28, 28)
    u = _u(32, 3)
    assert torch.equal(diff_augment(x, u, ALL, OutputRange.UNIT, p=0.0), x)
    changed = (diff_augment(x, u, ALL, OutputRange.UNIT, p=1.0) != x).flatten(1).any(1)
    assert changed.float().mean() > 0.9


def test_augmentation_is_differentiable_in_the_images():
    x = torch.rand(3, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    u = _u(3, 4, torch.float64)
    assert torch.autograd.gradcheck(lambda t: diff_augment(t, u, ALL, OutputRange.UNIT), (x,))
    # twice: the WGAN-GP penalty differentiates D's input gradient again
    assert torch.autograd.gradgradcheck(
        lambda t: diff_augment(t, u, ALL, OutputRange.SYMMETRIC).square(), (x,))


def test_compiles_fullgraph_and_matches_eager():
    x, u = torch.rand(8, 1, 28, 28), _u(8, 5)
    policy = ALL

    def fn(a, b):
        return diff_augment(a, b, policy, OutputRange.SYMMETRIC)

    compiled = torch.compile(fn, fullgraph=True)
    torch.testing.assert_close(compiled(x, u), fn(x, u))


class Recorder(Augment):
    """Records the images shown to D (by their id) and the views used."""

    def __init__(self, inner: Augment):
        super().__init__(inner.policy, inner.output_range)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, x, u, p=1.0):
        self.calls.append((x.shape[0], int(u[0, 0] * 1e6)))
        return super().__call__(x, u, p)


def _batch(v, b=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lo, _ = v.output_range.bounds
    real = torch.rand(b, 1, 28, 28, generator=gen) * (1 - lo) + lo
    latent = v.latent.sample(b, "cpu", gen)
    aug = v.augment.draw(b, "cpu", gen)
    return Batch(real, torch.arange(b) % 10, latent, aug)


@pytest.mark.parametrize("model,phase,expected", [
    ("dcgan", "D", 2), ("dcgan", "G", 1), ("wgan-gp", "D", 3), ("infogan", "info", 1),
    ("began", "D", 2), ("began", "G", 1), ("cgan", "D", 2),
])
def test_every_image_d_sees_goes_through_the_same_family(model, phase, expected):
    """Real and fake, D and G phases, WGAN-GP's interpolates, InfoGAN's Q: each call shows D
    an augmented batch, each from its own draw (view)."""
    cfg = recipe_config(model, "paper", augment="translation,cutout,color")
    v = build_variant(cfg)
    rec = Recorder(v.augment)
    v.augment = rec
    b = _batch(v)
    fn = {ph.name: ph.loss for ph in v.phases()}[phase]
    loss, _ = fn(b)
    assert len(rec.calls) == expected, rec.calls
    views = {draw for _, draw in rec.calls}
    assert len(views) == expected  # a different view per call
    assert b.aug.shape == (VIEWS, 6, PARAMS)


def test_g_gets_gradients_through_the_augmentation():
    v = build_variant(recipe_config("dcgan", augment="translation,cutout,color"))
    b = _batch(v)
    loss, _ = v.g_loss(b)
    loss.backward()
    grads = [p.grad for p in v.G.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_off_means_d_sees_the_images_unchanged():
    v = build_variant(recipe_config("dcgan"))
    assert v.augment is None
    x = torch.rand(4, 1, 28, 28)
    assert v.augmented(x, Batch(x, torch.zeros(4, dtype=torch.long), {}, None), 0) is x
