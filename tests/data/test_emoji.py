"""The emoji dataset: Debian's colour emoji font rendered at 64x64 RGB, labelled by group.

CI installs fonts-noto-color-emoji and unicode-data, so there these tests run; elsewhere
without the packages they are skipped, and the missing-package error is tested everywhere.
"""

import json
import os

import pytest
import torch

from gan_accel.data import load_dataset, read_emoji_test
from gan_accel.data.emoji import DEBIAN_EMOJI_TEST, DEBIAN_FONT
from gan_accel.errors import DataError

installed = pytest.mark.skipif(
    not os.environ.get("CI") and not (DEBIAN_FONT.is_file() and DEBIAN_EMOJI_TEST.is_file()),
    reason="needs Debian's fonts-noto-color-emoji and unicode-data (CI installs them)")

# emoji-test.txt of Unicode 15.0 (unicode-data 15.0.0): fully-qualified, no skin tones
GROUPS = {"Smileys & Emotion": 166, "People & Body": 363, "Animals & Nature": 152,
          "Food & Drink": 133, "Travel & Places": 218, "Activities": 85, "Objects": 261,
          "Symbols": 223, "Flags": 269}


@pytest.fixture(autouse=True)
def private_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@installed
def test_emoji_set_counts_shape_and_labels(tmp_path):
    lines = []
    data = load_dataset("emoji", log=lines.append)
    assert data.images.shape == (1870, 3, 64, 64) and data.images.dtype == torch.uint8
    assert data.class_names == tuple(GROUPS) and data.num_classes == 9
    assert data.labels.bincount().tolist() == list(GROUPS.values())
    assert data.background == 1.0  # composited on white: the corners are white
    assert (data.images[:, :, 0, 0] == 255).all()
    assert lines[0].startswith("rendered 1,870 emoji") and "alpha composited on white" in lines[1]
    records = json.loads((data.cache_dir / "records.json").read_text())
    assert records[0] == ["1F600", "grinning face", "Smileys & Emotion", "face-smiling"]
    assert len({r[3] for r in records}) == 99  # subgroups recorded
    # every image is a drawing, not a blank or the font's missing-glyph box
    ink = (data.images.float() - 255).abs().flatten(1).mean(1)
    assert ink.min() > 1.0
    # the cache is re-used: nothing rendered the second time
    again = []
    assert torch.equal(load_dataset("emoji", log=again.append).images, data.images)
    assert not any(s.startswith("rendered") for s in again)


@installed
def test_skin_tone_variants_are_an_option():
    with_tones = read_emoji_test(DEBIAN_EMOJI_TEST, skin_tones=True)
    assert len(with_tones) == 3655
    assert sum(e.skin_tone for e in with_tones) == 3655 - 1870
    assert len({e.group for e in with_tones}) == 9


def test_missing_packages_are_one_line_naming_them(tmp_path, monkeypatch):
    import gan_accel.data.emoji as emoji

    monkeypatch.setattr(emoji, "DEBIAN_FONT", tmp_path / "NotoColorEmoji.ttf")
    with pytest.raises(DataError) as err:
        load_dataset("emoji")
    msg = str(err.value)
    assert "apt-get install fonts-noto-color-emoji unicode-data" in msg
    assert str(tmp_path / "NotoColorEmoji.ttf") in msg and "\n" not in msg
    assert not (tmp_path / "xdg").exists()  # nothing written


def test_an_emoji_list_that_is_not_emoji_test_txt(tmp_path):
    (tmp_path / "emoji-test.txt").write_text("# group: Nothing\n1F600 ; unqualified # x\n")
    with pytest.raises(DataError, match="lists no fully-qualified emoji"):
        read_emoji_test(tmp_path / "emoji-test.txt")
