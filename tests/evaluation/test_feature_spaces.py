"""Feature spaces: the fixed random CNN is the same on every machine and tells good samples
from bad ones; images reach a net of another shape the stated way; every space has a name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from eval_images import shapes_set
from PIL import Image

from gan_accel.evaluation.feature_space import (
    RandomCNN,
    SpaceKind,
    adapt_images,
    random_cnn_space,
)
from gan_accel.evaluation.metrics import (
    density_coverage,
    frechet_distance,
    precision_recall,
)


@pytest.mark.parametrize("channels, total, first", [
    (1, -15.71310705477498, [-0.39804449677467346, -0.4074208438396454]),
    (3, -16.322562180898046, [-0.22981110215187073, -0.23522454500198364]),
])
def test_random_cnn_weights_are_fixed_by_the_seed(channels, total, first):
    """'random-cnn-seed0' names these weights: if the draw changed, the name would lie."""
    net = RandomCNN(channels, seed=0)
    assert sum(float(p.double().sum()) for p in net.parameters()) == pytest.approx(total,
                                                                                    abs=1e-9)
    assert net.convs[0].weight.flatten()[:2].tolist() == pytest.approx(first, abs=1e-7)
    other = RandomCNN(channels, seed=1)
    assert not torch.equal(other.convs[0].weight, net.convs[0].weight)
    assert all(not p.requires_grad for p in net.parameters())


@pytest.mark.parametrize("channels, resolution", [(1, 28), (3, 32), (3, 64)])
def test_random_cnn_space_shapes_and_name(channels, resolution):
    space = random_cnn_space((channels, resolution, resolution))
    assert space.name == "random-cnn-seed0" and space.kind is SpaceKind.RANDOM_CNN
    assert space.num_classes == 0
    images = torch.randint(0, 256, (5, channels, resolution, resolution), dtype=torch.uint8)
    feats, preds = space.extract(images, batch_size=2)
    assert feats.shape == (5, 512) and preds is None
    facts = space.describe()
    assert facts["feature_space"] == "random-cnn-seed0"
    assert "not Inception" in facts["feature_space_note"]


def test_extract_checks_shape_and_range():
    space = random_cnn_space((3, 32, 32))
    with pytest.raises(ValueError, match=r"random-cnn-seed0 measures images of shape \[N, 3, 32"):
        space.extract(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        space.extract(torch.full((2, 3, 32, 32), -1.0))


@pytest.fixture(scope="module")
def shapes_features():
    """Random-CNN features of two disjoint real sets and of imitated failure modes."""
    data = shapes_set((200, 200, 200, 200), channels=3, resolution=32, seed=0)
    space = random_cnn_space((3, 32, 32))
    real_a, real_b = data.images[:400], data.images[400:]
    one_class = data.images[400:][data.labels[400:] == 0]
    blurred = F.avg_pool2d(real_b.float() / 255, 5, stride=1, padding=2,
                           count_include_pad=False)
    return {name: space.extract(x)[0] for name, x in (
        ("a", real_a), ("b", real_b), ("one_class", one_class), ("blurred", blurred))}


def test_random_cnn_tells_real_from_collapsed_and_blurred(shapes_features):
    """Naeem et al. 2020: random embeddings are informative. Here: real vs real sits at its
    floor; a generator of one shape only, or of blurred shapes, is far above it."""
    f = shapes_features
    floor = frechet_distance(f["a"], f["b"])  # 400 vs 400 in 512-d: a high floor
    assert frechet_distance(f["a"], f["one_class"]) > 3 * floor
    assert frechet_distance(f["a"], f["blurred"]) > 2 * floor
    recall = {k: precision_recall(f["a"], f[k])[1] for k in ("b", "one_class", "blurred")}
    coverage = {k: density_coverage(f["a"], f[k])[1] for k in ("b", "one_class", "blurred")}
    assert recall["b"] > 0.8 and coverage["b"] > 0.8
    assert recall["one_class"] < 0.5 * recall["b"], recall
    assert recall["blurred"] < 0.6 * recall["b"], recall  # measured: 0.54 against 0.98
    assert coverage["one_class"] < 0.6 * coverage["b"], coverage  # measured: 0.54 vs 0.98


def test_adapt_images_luma_and_resize_as_stated():
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    gray = adapt_images(rgb.float() / 255, (1, 32, 32))
    pil = np.stack([np.asarray(Image.fromarray(im.permute(1, 2, 0).numpy()).convert("L"))
                    for im in rgb])
    assert np.abs(gray[:, 0].numpy() * 255 - pil).max() <= 1.0  # Pillow's ITU-R 601 luma
    small = adapt_images(rgb.float() / 255, (1, 28, 28))
    assert small.shape == (2, 1, 28, 28) and 0 <= float(small.min()) <= float(small.max()) <= 1
    flat = torch.full((1, 1, 32, 32), 0.25)
    assert torch.allclose(adapt_images(flat, (3, 28, 28)), torch.full((1, 3, 28, 28), 0.25))
