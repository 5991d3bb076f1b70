import os

import numpy as np
import pytest
import torch
from helpers import tiny_mnist, write_idx

from gan_accel.data import (
    FASHION_MNIST_DEBIAN,
    BatchIterator,
    embedded_subset,
    find_idx_files,
    load_dataset,
    parse_idx,
    read_idx,
    to_model_range,
)
from gan_accel.errors import DataError, UserError


@pytest.mark.parametrize("gz", [False, True])
def test_reads_idx_folder(tmp_path, gz):
    images, labels = tiny_mnist(tmp_path, n=30, gz=gz)
    data = load_dataset("mnist", tmp_path)
    assert data.images.dtype == torch.uint8 and data.images.shape == (30, 1, 28, 28)
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    assert data.labels.tolist() == labels.tolist()


def test_reads_torchvision_layout_and_test_split(tmp_path):
    tiny_mnist(tmp_path / "MNIST" / "raw", n=20, prefix="t10k", seed=3)
    data = load_dataset("mnist", tmp_path, train=False)
    assert len(data) == 20
    assert find_idx_files(tmp_path, train=True) is None


def test_embedded_subset_is_balanced():
    data = embedded_subset()
    assert data.images.shape == (5000, 1, 28, 28)
    assert data.labels.bincount().tolist() == [500] * 10
    assert 20 < data.images.float().mean() < 60  # MNIST mean ink ~33/255


def test_missing_full_mnist_is_an_error_naming_the_fixes(tmp_path):
    """Data asked for and absent is never swapped for the subset (a run records exactly the
    data it trained on)."""
    with pytest.raises(DataError, match="full MNIST IDX files not found") as err:
        load_dataset("mnist", tmp_path)
    assert "--data-dir" in str(err.value) and "--dataset mnist-5k" in str(err.value)


def test_fashion_mnist_debian_or_clear_error(tmp_path, monkeypatch):
    if os.environ.get("CI") or FASHION_MNIST_DEBIAN.is_dir():  # CI installs the package
        data = load_dataset("fashion-mnist")
        test = load_dataset("fashion-mnist", train=False)
        assert len(data) == 60000 and len(test) == 10000 and data.labels.max() == 9
    import gan_accel.data.datasets as datasets

    monkeypatch.setattr(datasets, "FASHION_MNIST_DEBIAN", tmp_path / "absent")
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


@pytest.mark.parametrize(
    "blob, match",
    [
        (b"", "truncated"),
        (b"\x00\x00\x08", "truncated"),
        (b"\x12\x34\x08\x03" + b"\x00" * 12, "magic"),
        (b"\x00\x00\x0d\x03" + b"\x00" * 12, "magic"),  # float dtype
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05" + b"\x01\x02", "truncated or corrupt"),
    ],
)
def test_corrupt_idx_errors_name_the_file(blob, match):
    with pytest.raises(DataError, match=match) as info:
        parse_idx(blob, "some/file-idx")
    assert "some/file-idx" in str(info.value)


def test_truncated_gzip_and_count_mismatch(tmp_path):
    tiny_mnist(tmp_path, n=10, gz=True)
    img = tmp_path / "train-images-idx3-ubyte.gz"
    img.write_bytes(img.read_bytes()[:50])
    with pytest.raises(DataError, match="train-images"):
        read_idx(img)
    tiny_mnist(tmp_path, n=10, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(9, np.uint8), 2049)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="10 images but .* 9 labels"):
        load_dataset("mnist", tmp_path)


def test_labels_and_images_swapped(tmp_path):
    images, labels = tiny_mnist(tmp_path, n=10, gz=False)
    a, b = tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte"
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b)
    b.write_bytes(blob_a)
    with pytest.raises(DataError, match="not an image file"):
        load_dataset("mnist", tmp_path)


def test_unknown_dataset_and_missing_dir(tmp_path):
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="not a directory"):
        load_dataset("mnist", tmp_path / "nope")


def test_pixel_ranges():
    u8 = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    assert to_model_range(u8, "unit").flatten().tolist() == [0.0, 1.0]
    assert to_model_range(u8, "symmetric").flatten().tolist() == [-1.0, 1.0]


def test_batches_are_resumable_and_disjoint_across_ranks():
    x = torch.arange(100).float()
    y = torch.arange(100)
    it = BatchIterator(x, y, batch_size=8, seed=5)
    full = [b for b, _ in it.epoch(2)]
    tail = [b for b, _ in it.epoch(2, start=4)]
    assert all(torch.equal(a, b) for a, b in zip(full[4:], tail, strict=True))
    r0 = BatchIterator(x, y, 8, 5, rank=0, world_size=2)
    r1 = BatchIterator(x, y, 8, 5, rank=1, world_size=2)
    seen0 = torch.cat([b for b, _ in r0.epoch(0)])
    seen1 = torch.cat([b for b, _ in r1.epoch(0)])
    assert len(set(seen0.tolist()) & set(seen1.tolist())) == 0
    assert r0.batches_per_epoch == 6
    with pytest.raises(UserError, match="batch size"):
        BatchIterator(x, y, batch_size=101, seed=0)

