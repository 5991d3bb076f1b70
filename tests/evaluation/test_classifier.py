"""Tests for gan_accel.classifier (CPU, seeded, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gan_accel.evaluation.classifier import (
    ARCH_NAME,
    FORMAT_NAME,
    MnistClassifier,
    _random_shift,
    accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
    u8_to_unit,
)
from gan_accel.ranges import OutputRange


def _quadrant_dataset(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trivially separable set: class k (0..3) is a bright 8x8 block in quadrant k, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
    for k in range(4):
        r, c = 3 + 14 * (k // 2), 3 + 14 * (k % 2)
        images[labels == k, r : r + 8, c : c + 8] = 255
    return images, labels


@pytest.fixture(scope="module")
def trained() -> tuple[MnistClassifier, list[str]]:
    images, labels = _quadrant_dataset(512, seed=0)
    lines: list[str] = []
    model = train_classifier(
        images, labels, epochs=2, batch_size=64, lr=3e-3, seed=0, augment=True, log=lines.append
    )
    return model, lines


def test_architecture_is_small_and_shapes() -> None:
    torch.manual_seed(0)
    model = MnistClassifier().eval()
    assert sum(p.numel() for p in model.parameters()) < 250_000
    x = torch.rand(3, 1, 28, 28)
    feats, logits = model.features_and_logits(x)
    assert feats.shape == (3, 128) and logits.shape == (3, 10)
    assert (feats >= 0).all()
    torch.testing.assert_close(model(x), logits)
    torch.testing.assert_close(model.features(x), feats)


def test_output_range_to_unit_and_u8() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0, 1.5, -2.0])
    torch.testing.assert_close(OutputRange.SYMMETRIC.to_unit(x),
                               torch.tensor([0.0, 0.5, 1.0, 1.0, 0.0]))
    torch.testing.assert_close(OutputRange.UNIT.to_unit(x),
                               torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0]))
    sym, unit = OutputRange("symmetric"), OutputRange("unit")
    torch.testing.assert_close(sym.to_unit(x), OutputRange.SYMMETRIC.to_unit(x))
    torch.testing.assert_close(unit.to_unit(x), OutputRange.UNIT.to_unit(x))
    with pytest.raises(ValueError):
        OutputRange(0.5)
    with pytest.raises(ValueError):
        OutputRange("tanh")
    u8 = torch.tensor([[0, 255]], dtype=torch.uint8).expand(28, 2).reshape(1, 28, 2)
    with pytest.raises(ValueError):
        u8_to_unit(u8)  # wrong spatial size
    img = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    out = u8_to_unit(img)
    assert out.shape == (2, 1, 28, 28) and out.dtype == torch.float32 and float(out.min()) == 1.0
    with pytest.raises(ValueError):
        u8_to_unit(img.float())


def test_random_shift_translates_by_at_most_two() -> None:
    x = torch.zeros(64, 1, 28, 28)
    x[:, 0, 14, 14] = 1.0
    out = _random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(64))  # pixel neither lost nor copied
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 28, pos % 28
    assert int((rows - 14).abs().max()) <= 2 and int((cols - 14).abs().max()) <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # shifts actually vary


def test_training_reduces_loss_and_beats_chance(trained) -> None:
    model, lines = trained
    images, labels = _quadrant_dataset(512, seed=0)
    untrained = train_classifier(images, labels, epochs=0, seed=0)  # same seeded initialisation
    x = u8_to_unit(images)
    with torch.no_grad():
        loss_before = float(F.cross_entropy(untrained(x), labels))
        loss_after = float(F.cross_entropy(model(x), labels))
    assert loss_after < 0.5 * loss_before
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "loss=" in lines[1]
    assert not model.training
    test_images, test_labels = _quadrant_dataset(256, seed=1)
    acc = accuracy(model, test_images, test_labels)
    assert 0.6 < acc <= 1.0  # chance is 0.25
    with torch.no_grad():
        manual = float((model(u8_to_unit(test_images)).argmax(1) == test_labels).float().mean())
    assert acc == pytest.approx(manual)


def test_training_is_deterministic_and_leaves_global_rng_alone() -> None:
    images, labels = _quadrant_dataset(128, seed=2)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    m1 = train_classifier(images, labels, epochs=1, batch_size=64, lr=1e-3, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    m2 = train_classifier(images, labels, epochs=1, batch_size=64, lr=1e-3, seed=5)
    m3 = train_classifier(images, labels, epochs=1, batch_size=64, lr=1e-3, seed=6)
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(v1, v2), k
    assert not torch.equal(m1.fc2.weight, m3.fc2.weight)


def test_training_input_validation() -> None:
    images, labels = _quadrant_dataset(16, seed=0)
    with pytest.raises(ValueError):
        train_classifier(images.float(), labels, epochs=1)
    with pytest.raises(ValueError):
        train_classifier(images, labels[:8], epochs=1)
    with pytest.raises(ValueError):
        train_classifier(images, labels + 10, epochs=1)


def test_save_load_round_trip(trained, tmp_path: Path) -> None:
    model, _ = trained
    path = tmp_path / "clf.safetensors"
    save_classifier(
        model, path, {"dataset": "synthetic-quadrants", "test_acc": 0.99, "command": "pytest"}
    )
    loaded, meta = load_classifier(path)
    assert meta["dataset"] == "synthetic-quadrants" and meta["test_acc"] == "0.99"
    assert meta["format"] == FORMAT_NAME and meta["arch"] == ARCH_NAME
    assert not loaded.training
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    # re-saving with the loaded metadata (reserved keys included) works
    save_classifier(loaded, tmp_path / "again.safetensors", meta)
    assert load_classifier(tmp_path / "again.safetensors")[1] == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.safetensors", "clf.safetensors"]


def test_load_rejects_bad_files(trained, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model, _ = trained
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ValueError, match="missing.safetensors"):
        load_classifier(missing)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="garbage.safetensors"):
        load_classifier(garbage)

    good = tmp_path / "good.safetensors"
    save_classifier(model, good, {})
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="truncated.safetensors"):
        load_classifier(truncated)

    pickled = tmp_path / "pickled.pt"
    torch.save(model.state_dict(), pickled)
    with pytest.raises(ValueError, match="pickled.pt"):
        load_classifier(pickled)

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(ValueError, match="foreign.safetensors.*not a gan-accel classifier"):
        load_classifier(foreign)

    wrong_shape = tmp_path / "wrong_shape.safetensors"
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["fc2.weight"] = torch.zeros(5, 128)
    save_file(tensors, str(wrong_shape), metadata={"format": FORMAT_NAME, "arch": ARCH_NAME})
    with pytest.raises(ValueError, match="wrong_shape.safetensors.*fc2.weight"):
        load_classifier(wrong_shape)

    with pytest.raises(ValueError, match="reserved"):
        save_classifier(model, tmp_path / "x.safetensors", {"format": "other"})
