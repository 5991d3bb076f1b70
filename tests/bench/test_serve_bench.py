"""``python -m gan_accel.bench serve``: a small run of the real command (servers on 127.0.0.1,
hey with bounded request counts) writes its JSON, markdown and plot, and judges its targets."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import run_module

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("hey") is None, reason="needs hey (.ci/run installs it)")
def test_bench_serve_quick_run(tmp_path):
    pytest.importorskip("litserve")
    proc = run_module("gan_accel.bench", "serve", "--quick", "--requests", "64",
                      "--serve-engines", "fp32", "--threads", "1", "--out-dir", str(tmp_path),
                      timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (doc_path,) = tmp_path.glob("*-serve-quick.json")
    doc = json.loads(doc_path.read_text())
    rows = doc["rows"]
    load = [r for r in rows if "requests" in r]
    modes = {(r["mode"], r["concurrency"], r["images_per_request"]) for r in load}
    for mode in ("batching", "no batching"):
        assert {(mode, c, 1) for c in (1, 16, 64)} <= modes
        assert (mode, 16, 64) in modes
    assert all(r["answered"] == r["requests"] and r["status"] == "ok" for r in load), load
    overload = next(r for r in load if r["mode"].startswith("overload"))
    assert overload["ok"] + overload["refused_503"] == overload["requests"]
    targets = doc["config"]["targets"]["fp32"]
    assert targets["nothing_lost"] is True
    assert {"batching_speedup_c16", "served_vs_engine_b64", "c1_p50_ms"} <= set(targets)
    assert (tmp_path / doc_path.name.replace(".json", ".md")).is_file()
    assert (tmp_path / doc_path.name.replace(".json", ".png")).is_file()
