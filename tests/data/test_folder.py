"""Image folders: labels, every Pillow mode converted and said, the cache and its errors."""

import json
import os

import numpy as np
import pytest
import torch
from image_folders import MIXED, mixed_folder, rgb_folder, write_image
from PIL import Image

from gan_accel.data import FolderRequest, MappedImages, load_dataset, load_folder
from gan_accel.data.cache import CACHE_DIRNAME
from gan_accel.errors import DataError, UserError


class Lines(list):
    def __call__(self, line):
        self.append(line)

    def joined(self) -> str:
        return "\n".join(self)


def load(root, resolution=32, channels=3, background=0.0, **kw):
    log = Lines()
    data = load_folder(root, FolderRequest(resolution, channels, background), log=log, **kw)
    return data, log


def leftovers(root):
    """Everything a failed load left in the folder's cache location."""
    cache = root / CACHE_DIRNAME
    return sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []


@pytest.fixture(autouse=True)
def private_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


# -- layout, labels, conversion --------------------------------------------------------------
def test_mixed_modes_and_sizes_become_rgb_and_the_line_says_so(tmp_path):
    root = mixed_folder(tmp_path / "pics")
    data, log = load(root)
    n = len(MIXED)
    assert data.images.dtype == torch.uint8 and data.images.shape == (2 * n, 3, 32, 32)
    assert data.labels.tolist() == [0] * n + [1] * n
    assert data.class_names == ("cat", "dog") and data.num_classes == 2
    assert data.cache_dir == root / CACHE_DIRNAME / "r32-c3-bg0" and len(data.digest) == 64
    line = next(s for s in log if "converted to RGB" in s).split("converted to RGB: ")[1]
    for said in ("2 RGBA", "2 LA", "2 P+transparency", "(alpha composited on black)", "2 I;16",
                 "(scaled to 8-bit)", "2 L,", "2 P,", "2 CMYK", "2 bilevel (1)",
                 "non-square centre-cropped", "resized to 32x32 (Lanczos"):
        assert said in line, (said, line)
    assert "2 RGB," not in line  # RGB files need no conversion


def test_alpha_is_composited_on_the_background(tmp_path):
    """RGBA 48x32, top half transparent: centre-cropped to 32x32, no resize at 32 px."""
    write_image(tmp_path / "f" / "a.png", "RGBA", 48, 32, seed=3)
    black, _ = load(tmp_path / "f")
    white, _ = load(tmp_path / "f", background=1.0)
    assert black.images[0, :, :16].max() == 0 and white.images[0, :, :16].min() == 255
    assert torch.equal(black.images[0, :, 16:], white.images[0, :, 16:])  # opaque: unchanged
    assert (black.background, white.background) == (0.0, 1.0)


def test_16_bit_gray_is_scaled_and_gray_copied_to_rgb(tmp_path):
    path = write_image(tmp_path / "f" / "g.png", "I;16", 36, 36, seed=4)
    data, _ = load(tmp_path / "f")
    wide = np.asarray(Image.open(path)).astype(np.float64)
    assert wide.max() > 255 and (wide % 257).any()  # real 16-bit values
    eight = np.rint(wide * 255 / 65535).astype(np.uint8)  # 0..65535 -> 0..255, rounded
    want = np.asarray(Image.fromarray(eight, "L").resize((32, 32), Image.Resampling.LANCZOS))
    for c in range(3):
        assert np.array_equal(data.images[0, c].numpy(), want)


def test_exif_orientation_is_applied(tmp_path):
    """Stored 40x20 with its left half white; orientation 6 (turn 90 degrees clockwise)
    makes it 20x40 with the white half on top."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "f").mkdir()
    Image.fromarray(a).save(tmp_path / "f" / "turned.jpg", exif=exif, quality=95)
    data, log = load(tmp_path / "f", resolution=28, channels=1)
    img = data.images[0, 0].float()
    assert img[:10].mean() > 200 and img[-10:].mean() < 50
    assert "1 turned upright by their EXIF orientation" in log.joined()


def test_channels_from_the_data_and_colour_to_gray(tmp_path):
    gray = tmp_path / "gray"
    for i, mode in enumerate(("L", "LA", "I;16", "1")):
        write_image(gray / f"{i}.png", mode, 30, 30, seed=i)
    data, _ = load(gray, channels=0)
    assert data.images.shape[1] == 1
    colour = mixed_folder(tmp_path / "colour")
    assert load(colour, channels=0)[0].images.shape[1] == 3
    data, log = load(colour, channels=1)  # colour to 1 channel is fine, and said
    assert data.images.shape[1:] == (1, 32, 32)
    assert "converted to grayscale (L): " in log.joined() and "2 RGB" in log.joined()


def test_flat_folder_is_unlabelled(tmp_path):
    root = rgb_folder(tmp_path / "flat", 5, classes=())
    (root / "README.txt").write_text("not an image")
    data, log = load(root, resolution=64)
    assert data.num_classes == 0 and data.class_names == () and data.labels.tolist() == [0] * 5
    assert "ignored 1 file without an image extension (e.g. README.txt)" in log.joined()
    rest, held = data.split(2)  # an unlabelled set splits uniformly
    assert (len(rest), len(held)) == (3, 2)


def test_dataset_name_may_be_the_folder_path(tmp_path):
    root = rgb_folder(tmp_path / "pics", 3)
    data = load_dataset(str(root), log=Lines(), resolution=32)
    assert data.images.shape == (6, 3, 32, 32) and data.data_dir == str(root)
    with pytest.raises(UserError, match="needs --data-dir"):
        load_dataset("folder")
    with pytest.raises(UserError, match="name two folders"):
        load_dataset(str(root), str(tmp_path))


# -- errors: one line naming the file and the fix, nothing left behind -----------------------
def _bad_file_folder(root, kind):
    rgb_folder(root, 3)
    bad = root / "a" / "bad.png"
    if kind == "unreadable":
        bad.write_bytes(b"this is not a PNG")
    else:
        good = write_image(root / "a" / "big.png", "RGB", 64, 64, seed=9).read_bytes()
        bad.write_bytes(good[: len(good) // 2])
    return bad


@pytest.mark.parametrize("kind, said", [("unreadable", "is not an image Pillow can read"),
                                         ("truncated", "is truncated")])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_image_is_one_line_naming_it(tmp_path, kind, said, workers):
    root = tmp_path / "pics"
    bad = _bad_file_folder(root, kind)
    with pytest.raises(DataError) as err:
        load(root, workers=workers)
    msg = str(err.value)
    assert msg.startswith(f"{bad} {said}") and "re-save it as PNG or remove it" in msg
    assert "\n" not in msg
    assert leftovers(root) == []  # no cache, no temporary folder
    bad.unlink()
    assert len(load(root)[0]) == len(list(root.rglob("*.png")))  # fixed: the next run works


def test_every_bad_file_is_counted_in_the_one_line(tmp_path):
    root = rgb_folder(tmp_path / "pics", 2)
    for name in ("x.png", "y.png", "z.png"):
        (root / "b" / name).write_bytes(b"junk")
    with pytest.raises(DataError, match=r"b/x.png is not an image .* \(2 more files fail too: "
                                        r"b/y.png, b/z.png\)"):
        load(root)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"empty holds no images \(.*\.png.*\) \(only 1 other "
                                        r"files\); put images in it"):
        load(tmp_path / "empty")
    assert leftovers(tmp_path / "empty") == []


def test_all_classes_empty(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / "pics" / c).mkdir(parents=True)
    with pytest.raises(DataError, match=r"class folders of .*pics \(cat, dog\) hold no images"):
        load(tmp_path / "pics")


def test_an_empty_class(tmp_path):
    root = rgb_folder(tmp_path / "pics", 2, classes=("cat", "dog"))
    (root / "emu").mkdir()
    with pytest.raises(DataError, match=r"class folder .*pics/emu holds no images; add its "
                                        "images or remove the folder"):
        load(root)


def test_images_beside_class_folders(tmp_path):
    root = rgb_folder(tmp_path / "pics", 2)
    write_image(root / "stray.png", "RGB", 30, 30, seed=1)
    with pytest.raises(DataError, match=r"holds 1 images \(e.g. stray.png\) beside its class "
                                        r"folders \(a, b\); move them into a class folder"):
        load(root)


def test_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="is not a directory"):
        load(tmp_path / "nope")


# -- the cache -------------------------------------------------------------------------------
def test_cache_is_reused_then_invalidated_by_add_remove_modify(tmp_path):
    root = rgb_folder(tmp_path / "pics", 4)
    first, log = load(root)
    assert any(s.startswith("decoded 8 images") for s in log)
    again, log = load(root)
    assert any(s.startswith("read the cache") for s in log) and not any("decoded" in s
                                                                        for s in log)
    assert torch.equal(first.images, again.images) and first.digest == again.digest

    write_image(root / "b" / "new.png", "RGB", 40, 40, seed=77)  # added
    added, log = load(root)
    assert "(1 added); decoding what changed" in log.joined()
    assert any(s.startswith("decoded 1 images") and "re-used 8 unchanged" in s for s in log)
    assert len(added) == 9 and added.digest != first.digest
    assert torch.equal(added.images[:4], first.images[:4])  # class a untouched

    (root / "a" / "000.png").unlink()  # removed
    removed, log = load(root)
    assert "(1 removed)" in log.joined() and len(removed) == 8
    assert torch.equal(removed.images[:3], first.images[1:4])

    # modified: other pixels in a file of the same size (an uncompressed BMP), a later time
    target = root / "a" / "001.bmp"
    (root / "a" / "001.png").unlink()
    write_image(target, "RGB", 40, 40, seed=1)
    before, _ = load(root)
    size = target.stat().st_size
    write_image(target, "RGB", 40, 40, seed=1234)
    assert target.stat().st_size == size
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    modified, log = load(root)
    assert "(1 modified)" in log.joined()
    assert not torch.equal(modified.images[0], before.images[0])
    assert torch.equal(modified.images[1:], before.images[1:])


def test_incremental_cache_equals_a_full_decode(tmp_path):
    root = mixed_folder(tmp_path / "pics")
    load(root)
    write_image(root / "cat" / "zz.png", "RGBA", 30, 50, seed=5)
    incremental, _ = load(root)
    manifest = json.loads((incremental.cache_dir / "manifest.json").read_text())
    assert (manifest["decoded"], manifest["reused"]) == (1, 2 * len(MIXED))
    import shutil

    shutil.rmtree(root / CACHE_DIRNAME)
    full, _ = load(root)
    assert torch.equal(full.images, incremental.images)
    assert torch.equal(full.labels, incremental.labels)


def test_process_pool_decodes_the_same_pixels(tmp_path):
    root = mixed_folder(tmp_path / "pics")
    one, _ = load(root, workers=1)
    import shutil

    shutil.rmtree(root / CACHE_DIRNAME)
    two, log = load(root, workers=2)
    assert "with 2 processes" in log.joined()
    assert torch.equal(one.images, two.images)


def test_unwritable_folder_caches_in_the_user_cache(tmp_path):
    root = rgb_folder(tmp_path / "pics", 2)
    (root / CACHE_DIRNAME).write_text("a file where the cache folder would go")
    data, log = load(root)
    assert data.cache_dir.is_relative_to(tmp_path / "xdg" / "gan-accel" / "folders")
    assert len(load(root)[0]) == 4 and "read the cache" in load(root)[1].joined()


def test_a_prepared_cache_of_another_resolution_is_one_line(tmp_path):
    root = rgb_folder(tmp_path / "pics", 2)
    data32, _ = load(root, resolution=32)
    cache = data32.cache_dir
    with pytest.raises(DataError) as err:
        load(cache, resolution=64)
    msg = str(err.value)
    assert f"{cache} is a prepared cache of 4 images, 32x32 RGB, 2 classes" in msg
    assert "--resolution 32" in msg and f"pass its source folder {root}" in msg
    used, log = load(cache, resolution=32, channels=0)  # its own shape: used as it is
    assert torch.equal(used.images, data32.images) and "using the prepared cache" in log[0]
    with pytest.raises(DataError, match="decoded with --resolution 32, not 28"):
        load(root / CACHE_DIRNAME, resolution=28)  # the cache folder itself: same answer


def test_an_interrupted_decode_leaves_nothing_a_later_run_reads(tmp_path, monkeypatch):
    import gan_accel.data.folder as folder

    root = rgb_folder(tmp_path / "pics", 3)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(folder, "_decode_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(root)
    assert leftovers(root) == []
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert len(load(root)[0]) == 6


# -- memory: streaming from the memory-mapped cache ------------------------------------------
def test_a_folder_over_the_memory_budget_streams(tmp_path):
    root = rgb_folder(tmp_path / "pics", 6)
    small, log = load(root, budget=1000)  # 12 x 3 x 32 x 32 x 5 bytes do not fit
    assert isinstance(small.images, MappedImages) and small.streamed
    assert "streaming from the memory-mapped cache" in log.joined()
    big, _ = load(root, budget=10**9)
    assert isinstance(big.images, torch.Tensor) and not big.streamed
    idx = torch.tensor([7, 2, 2, 11, 0])
    assert torch.equal(small.images[idx], big.images[idx])
    assert small.images.shape == big.images.shape and len(small) == len(big)


def test_the_memory_budget_comes_from_the_environment(tmp_path, monkeypatch):
    root = rgb_folder(tmp_path / "pics", 2)
    monkeypatch.setenv("GAN_ACCEL_DATA_MEMORY", "1K")
    assert load(root)[0].streamed
    monkeypatch.setenv("GAN_ACCEL_DATA_MEMORY", "1G")
    assert not load(root)[0].streamed
    monkeypatch.setenv("GAN_ACCEL_DATA_MEMORY", "lots")
    with pytest.raises(DataError, match="GAN_ACCEL_DATA_MEMORY='lots' is not a size"):
        load(root)


def test_a_full_disk_is_one_line_before_decoding(tmp_path, monkeypatch):
    import errno

    root = rgb_folder(tmp_path / "pics", 3)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(UserError) as err:
        load(root)
    msg = str(err.value)  # 6 x 3 x 32 x 32 bytes
    cache = root / CACHE_DIRNAME / "r32-c3-bg0" / "images.npy"
    assert msg.startswith(f"no space left on device: writing {cache} needs 18.0 KiB, "), msg
    assert msg.endswith("set XDG_CACHE_HOME to a folder on another disk") and "\n" not in msg
    assert leftovers(root) == []
