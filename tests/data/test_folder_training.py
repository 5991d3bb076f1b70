"""Folders in training: the same batches streamed or in memory, exact resume, the resolved
config, the background reaching augmentation, and the train command's one-line errors."""

import json

import pytest
import torch
from image_folders import rgb_folder, write_image

from gan_accel.cli import train
from gan_accel.data import BatchIterator, FolderRequest, load_folder, to_model_range
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config


def quiet(*_):
    pass


@pytest.fixture(autouse=True)
def private_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GAN_ACCEL_DATA_MEMORY", raising=False)


@pytest.fixture
def gray_folder(tmp_path):
    """40 grayscale 28x28 PNGs in two classes: 5 batches of 8 per epoch."""
    root = tmp_path / "gray"
    for c in ("a", "b"):
        for i in range(20):
            write_image(root / c / f"{i:02d}.png", "L", 28, 28, seed=hash((c, i)) % 10_000)
    return root


def test_streamed_batches_equal_in_memory_batches(tmp_path):
    root = rgb_folder(tmp_path / "pics", 13)
    req = FolderRequest(32, 3, 0.0)
    mapped = load_folder(root, req, log=quiet, budget=1)
    memory = load_folder(root, req, log=quiet, budget=None)
    assert mapped.streamed and not memory.streamed
    x = to_model_range(memory.images, "symmetric")

    def stream(images):
        return to_model_range(images, "symmetric")

    for rank in (0, 1):
        a = BatchIterator(x, memory.labels, 4, seed=3, rank=rank, world_size=2)
        b = BatchIterator(mapped.images, mapped.labels, 4, seed=3, rank=rank, world_size=2,
                          transform=stream)
        for epoch, start in ((0, 0), (1, 0), (1, 2)):  # (1, 2): resumed mid-epoch
            got = list(b.epoch(epoch, start))
            want = list(a.epoch(epoch, start))
            assert len(got) == len(want) == 3 - start
            for (xa, ya), (xb, yb) in zip(want, got, strict=True):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("output_range", ["unit", "symmetric"])
def test_batch_conversion_is_the_ranges_own_mapping_bit_for_bit(output_range):
    from gan_accel.ranges import OutputRange

    every = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    want = OutputRange(output_range).from_unit(every.float() / 255.0)
    assert torch.equal(to_model_range(every, output_range), want)


def _cfg(tmp_path, data, name, **kw):
    return recipe_config("dcgan", "paper", dataset="folder", data_dir=str(data),
                         out=str(tmp_path / name), batch_size=8, epochs=2, progress=False,
                         log_every=1, ema=0.0, plateau_factor=1.0, **kw)


@pytest.mark.slow  # three short runs: ~10 s on a quiet machine
def test_a_streamed_run_resumed_equals_an_in_memory_run(tmp_path, gray_folder, monkeypatch):
    full = Trainer(_cfg(tmp_path, gray_folder, "full"), log=quiet)
    assert not full.data.streamed
    full.fit()
    monkeypatch.setenv("GAN_ACCEL_DATA_MEMORY", "1K")  # the folder no longer fits
    part = Trainer(_cfg(tmp_path, gray_folder, "part", max_steps=7), log=quiet)
    assert part.data.streamed
    part.fit()
    resumed = Trainer(_cfg(tmp_path, gray_folder, "part"), log=quiet,
                      resume_from=tmp_path / "part")
    assert resumed.data.streamed and (resumed.pos.step, resumed.pos.batch) == (7, 2)
    resumed.fit()
    for k, v in full.variant.state_dict().items():
        assert torch.equal(v, resumed.variant.state_dict()[k]), k


def test_the_trainer_resolves_the_shape_from_the_data_and_saves_it(tmp_path, monkeypatch):
    """An RGB folder at --resolution 32: the config the run saves says folder, the absolute
    folder, 32, 3 and black; the loader serves [B, 3, 32, 32] batches in G's range."""
    root = rgb_folder(tmp_path / "pics", 8, size=(50, 40))
    monkeypatch.chdir(tmp_path)  # the folder given relative to the working directory
    cfg = recipe_config("dcgan", dataset="pics", resolution=32, out=str(tmp_path / "run"),
                        batch_size=4, progress=False)
    t = Trainer(cfg, log=quiet)
    assert (cfg.dataset, cfg.data_dir) == ("folder", str(root))
    assert (cfg.resolution, cfg.channels, cfg.background) == (32, 3, 0.0)
    assert t.data.class_names == ("a", "b")
    real, labels = next(t.loader.epoch(0))
    assert real.shape == (4, 3, 32, 32) and real.dtype == torch.float32
    lo, hi = t.variant.output_range.bounds
    assert lo <= real.min() and real.max() <= hi and set(labels.tolist()) <= {0, 1}


def test_the_background_reaches_the_augmentation(tmp_path):
    root = rgb_folder(tmp_path / "pics", 4)
    cfg = recipe_config("dcgan", dataset="folder", data_dir=str(root), resolution=28,
                        channels=1, background=1.0, augment="translation",
                        out=str(tmp_path / "run"), batch_size=4, progress=False)
    t = Trainer(cfg, log=quiet)
    assert t.variant.augment.background == 1.0
    black = torch.full((2, 1, 28, 28), t.variant.output_range.bounds[0])
    u = torch.zeros(2, t.variant.augment.draw(2, "cpu", torch.Generator()).shape[-1])
    shifted = t.variant.augment(black, u)  # u = 0: shift by -s rows and columns
    assert shifted.max() == t.variant.output_range.bounds[1]  # shifted-in pixels are white


# -- the train command -----------------------------------------------------------------------
def test_train_command_on_an_rgb_folder_at_32(tmp_path, capsys):
    root = rgb_folder(tmp_path / "pics", 8)
    code = run_cli(train.main, ["--dataset", str(root), "--resolution", "32", "--batch-size",
                                "4", "--max-steps", "3", "--out", str(tmp_path / "run"),
                                "--no-progress", "--ndf", "8", "--ngf", "8"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["resolution"], saved["channels"]) == (32, 3)


def test_train_command_says_the_conversion_and_records_the_data(tmp_path, capsys):
    root = rgb_folder(tmp_path / "pics", 4)
    write_image(root / "a" / "alpha.png", "RGBA", 30, 40, seed=1)
    code = run_cli(train.main, ["--dataset", "folder", "--data-dir", str(root), "--resolution",
                                "28", "--channels", "1", "--batch-size", "4", "--max-steps",
                                "2", "--out", str(tmp_path / "run"), "--no-progress", "--ema",
                                "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "converted to grayscale (L): 1 RGBA (alpha composited on black), 8 RGB" in out
    assert "training dcgan on 9 images of 1x28x28" in out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: saved[k] for k in ("dataset", "data_dir", "resolution", "channels",
                                  "background")} == {
        "dataset": "folder", "data_dir": str(root), "resolution": 28, "channels": 1,
        "background": 0.0}


def _one_line(capsys, argv, match):
    code = run_cli(train.main, argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, (match, err)


def test_train_command_errors_are_one_line_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--out", str(out), "--no-progress"]
    _one_line(capsys, ["--dataset", "folder", *common], "--dataset folder needs --data-dir")
    _one_line(capsys, ["--dataset", "pictures-that-are-not-here", *common], "unknown dataset")
    _one_line(capsys, ["--resolution", "48", *common], "invalid choice: 48")
    (tmp_path / "empty").mkdir()
    _one_line(capsys, ["--dataset", str(tmp_path / "empty"), *common], "holds no images")
    root = rgb_folder(tmp_path / "pics", 3)
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    _one_line(capsys, ["--dataset", str(root), *common],
              f"{root / 'b' / 'broken.png'} is not an image Pillow can read")
    (root / "b" / "broken.png").unlink()
    data = load_folder(root, FolderRequest(32, 3, 0.0), log=quiet)
    _one_line(capsys, ["--dataset", "folder", "--data-dir", str(data.cache_dir),
                       "--resolution", "64", *common],
              "is a prepared cache of 6 images, 32x32 RGB")
    assert not out.exists()  # nothing written for a run that never started
