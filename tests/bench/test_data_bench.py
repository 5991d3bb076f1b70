"""`python -m gan_accel.bench data --quick`: a PNG folder decoded, the cached loader timed in
memory and streamed, and compared with a training step."""

from __future__ import annotations

import json

from gan_accel.bench.__main__ import main


def test_data_suite_quick_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    out = tmp_path / "results"
    assert main(["data", "--quick", "--threads", "1", "--device", "cpu", "--data-images",
                 "128", "--out-dir", str(out)]) == 0
    (path,) = out.glob("*-data-quick.json")
    doc = json.loads(path.read_text())
    assert doc["suite"] == "data" and (out / path.name.replace(".json", ".md")).is_file()
    rows = {(r["measure"], r["mode"]): r for r in doc["rows"]}
    decode = rows[("first decode", "1 process")]  # 128 files: decoded in this process
    assert (decode["images"], decode["resolution"], decode["channels"]) == (128, 32, 3)
    assert decode["images_per_s"] > 0
    step = rows[("train step", "eager")]
    assert step["model"] == "gan" and step["images_per_s"] > 0
    for mode in ("in memory", "streamed (memory-mapped)"):
        loader = rows[("loader", mode)]
        assert loader["images"] == 128  # two batches of 64
        want = round(loader["images_per_s"] / step["images_per_s"], 1)
        assert loader["vs_fastest_step"] == want and loader["target"].startswith(">= 10x: ")
    assert rows[("cache read", "whole, into memory")]["images"] == 128
