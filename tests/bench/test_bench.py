"""The benchmark suite: a --quick CPU smoke run of every suite, its files, and `bench report`.

One subprocess runs inference, train, kernels and the profile with --quick into a tmp dir
(module-scoped fixture); the tests then check the JSON schema, the numbers' sanity, and that
the markdown and PNG were written and can be redrawn. The train suite runs eager only and
the profile profiles the eager step: compiling a full training step costs 30-100 s on two
busy cores (the compiled paths are covered by inference/kernels here and by test_trainer).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from helpers import run_module

TIMED_SUITES = ("inference", "train", "kernels")
ENV_KEYS = ("device", "device_name", "cpu_cores", "threads", "torch", "triton", "onnxruntime",
            "python", "git_commit", "timestamp", "loadavg_start", "loadavg_end")
ROW_KEYS = {
    "inference": ("model", "backend", "batch", "images_per_s", "min_bytes", "bw_fraction"),
    "train": ("model", "mode", "batch", "images_per_s", "peak_mem_mb"),
    "kernels": ("op", "shape", "impl", "pass", "us_per_call", "gbps", "bw_fraction"),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("bench")
    proc = run_module("gan_accel.bench", "inference", "train", "kernels", "--quick", "--threads",
                      "1", "--device", "cpu", "--modes", "eager", "--profile", "--profile-eager",
                      "--out-dir", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    docs = {}
    for path in out.glob("*.json"):
        if path.name.endswith(".trace.json"):
            continue
        doc = json.loads(path.read_text())
        docs[doc["suite"]] = doc
    return out, docs


@pytest.mark.slow
def test_every_suite_writes_json_markdown_and_plot(quick_run):
    out, docs = quick_run
    assert set(docs) == {"inference", "train", "kernels", "profile"}
    for suite, doc in docs.items():
        stem = f"{doc['env']['timestamp'][:10]}-{doc['env']['device_slug']}-1t-{suite}-quick"
        assert (out / f"{stem}.json").is_file()
        assert (out / f"{stem}.md").read_text().startswith(f"# bench: {suite}")
        if suite in TIMED_SUITES:
            png = out / f"{stem}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert list(out.glob("*-profile-quick.trace.json"))
    txt = next(out.glob("*-profile-quick.txt")).read_text()
    assert "D_step" in txt and "G_step" in txt and "Self CPU" in txt


@pytest.mark.slow
def test_json_schema(quick_run):
    _, docs = quick_run
    for suite, doc in docs.items():
        assert doc["schema"] == "gan-accel-bench/1" and doc["quick"] is True
        for key in ENV_KEYS:
            assert key in doc["env"], (suite, key)
        assert doc["env"]["device"] == "cpu" and doc["env"]["threads"] == 1
        assert isinstance(doc["config"], dict) and doc["rows"], suite
        if suite not in TIMED_SUITES:
            continue
        for row in doc["rows"]:
            for key in ("suite", "status", "p20_ms", "p50_ms", "p80_ms", "samples", "speedup",
                        *ROW_KEYS[suite]):
                assert key in row, (suite, key, row)


def _ok_rows(doc):
    return [r for r in doc["rows"] if r["status"] == "ok"]


@pytest.mark.slow
def test_timings_are_sane(quick_run):
    _, docs = quick_run
    for suite in TIMED_SUITES:
        rows = _ok_rows(docs[suite])
        assert rows, suite
        for r in rows:
            assert 0 < r["p20_ms"] <= r["p50_ms"] <= r["p80_ms"], r
            assert math.isfinite(r["p50_ms"]) and r["samples"] >= 3, r
            assert r["speedup"] is not None and r["speedup"] > 0, r


@pytest.mark.slow
def test_inference_rows(quick_run):
    _, docs = quick_run
    rows = docs["inference"]["rows"]
    backends = {r["backend"] for r in _ok_rows(docs["inference"])}
    assert {"eager", "compiled", "ort-cpu"} <= backends
    for r in _ok_rows(docs["inference"]):
        assert r["images_per_s"] == pytest.approx(r["batch"] / (r["p50_ms"] / 1e3), rel=1e-3)
        assert r["max_abs_diff"] < 1e-4, r  # every backend computes the same images
        assert r["bw_fraction"] is None  # no peak bandwidth on CPU
        assert r["min_bytes"] > 172_608 * 4  # at least the weights
        if r["backend"] == "eager":
            assert r["speedup"] == 1.0
        if r["backend"] == "compiled":
            assert r["compile_s"] > 0
        if r["backend"] == "ort-cpu":
            assert r["export_s"] > 0
    assert sorted({r["batch"] for r in rows}) == [1, 8]


@pytest.mark.slow
def test_train_and_kernels_rows(quick_run):
    _, docs = quick_run
    (train,) = _ok_rows(docs["train"])
    assert train["model"] == "dcgan" and train["phases"] == "D,G" and train["batch"] == 16
    # tensor memory: params + Adam state of G and D (~0.3M params x 4 B x 3), plus the step's
    assert 2 < train["state_mem_mb"] < 50 and 0 < train["step_mem_mb"] < 500
    assert train["peak_mem_mb"] == pytest.approx(train["state_mem_mb"] + train["step_mem_mb"],
                                                 abs=0.02)
    kernels = docs["kernels"]["rows"]
    triton = [r for r in kernels if r["impl"] == "triton"]
    assert triton and all(r["status"] == "needs CUDA" and r["p50_ms"] is None for r in triton)
    assert any("needs CUDA" in n or "interpreter" in n for n in docs["kernels"]["notes"])
    ops = {(r["op"], r["impl"]) for r in _ok_rows(docs["kernels"])}
    assert {("spectral_norm", "torch-parametrization"), ("spectral_norm", "torch-reference"),
            ("spectral_norm", "torch-reference-compiled"), ("gp_norm", "torch"),
            ("gp_norm", "torch-compiled")} <= ops
    phases = {r["name"] for r in docs["profile"]["rows"] if r["kind"] == "phase"}
    assert phases == {"D_step", "G_step"}


@pytest.mark.slow
def test_report_redraws_and_compares(quick_run, tmp_path):
    out, _ = quick_run
    src = next(out.glob("*-inference-quick.json"))
    proc = run_module("gan_accel.bench", "report", str(src), "--out-dir", str(tmp_path / "one"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "one" / f"{src.stem}.md").read_text() == \
        (out / f"{src.stem}.md").read_text()
    assert (tmp_path / "one" / f"{src.stem}.png").is_file()

    from gan_accel.bench.report import main as report_main

    kernels = next(out.glob("*-kernels-quick.json"))
    assert report_main([str(kernels), str(kernels), "--out-dir", str(tmp_path / "two")]) == 0
    (md,) = (tmp_path / "two").glob("compare-*.md")
    text = md.read_text()
    assert "ratio" in text and "#2" in text
    assert list((tmp_path / "two").glob("compare-*.png"))


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from gan_accel.bench.__main__ import main

    from gan_accel.errors import run_cli

    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"rows": []}))
    assert run_cli(main, ["report", str(bad)]) == 2
    assert "not a gan-accel bench result" in capsys.readouterr().err
    assert run_cli(main, ["report", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli(main, ["nonsense", "--quick"]) == 2
    assert "unknown suite 'nonsense'" in capsys.readouterr().err
    assert run_cli(main, ["train", "--models", "nogan", "--out-dir", str(tmp_path)]) == 2
    assert "unknown nogan" in capsys.readouterr().err
    assert run_cli(main, ["inference", "--batches", "0", "--out-dir", str(tmp_path)]) == 2
    assert "positive integers" in capsys.readouterr().err


@pytest.mark.slow
def test_gan_accel_cli_dispatches_to_bench(quick_run, tmp_path, capsys):
    from gan_accel.cli import main

    out, _ = quick_run
    src = next(out.glob("*-train-quick.json"))
    assert main(["bench", "report", str(src), "--out-dir", str(tmp_path)]) == 0
    assert "dcgan" in capsys.readouterr().out


def test_timing_helpers():
    import torch
    from gan_accel.bench.common import TimingBudget, add_speedups, peak_for_name, quantile, time_fn

    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([0.0, 10.0], 0.2) == pytest.approx(2.0)
    t = time_fn(lambda: sum(range(100)), torch.device("cpu"), 1, TimingBudget.quick())
    assert t.samples >= 3 and 0 < t.p20_ms <= t.p50_ms <= t.p80_ms
    rows = [{"g": 1, "name": "eager", "p50_ms": 4.0}, {"g": 1, "name": "fast", "p50_ms": 2.0},
            {"g": 2, "name": "fast", "p50_ms": 1.0}]
    add_speedups(rows, ("g",), "name", "eager")
    assert [r["speedup"] for r in rows] == [1.0, 2.0, None]
    assert peak_for_name("NVIDIA H100 80GB HBM3") == 3350.0
    assert peak_for_name("NVIDIA H200") == 4800.0
    assert peak_for_name("NVIDIA GH200 480GB") == 4000.0
    assert peak_for_name("Some Future GPU") is None



def test_quality_dispatch_uses_its_own_options(tmp_path, monkeypatch, capsys):
    """`python -m gan_accel.bench quality ARGS`: the quality module parses ARGS; its dict is
    saved."""
    import types

    from gan_accel.bench.__main__ import main

    from gan_accel import bench

    fake = types.ModuleType("gan_accel.bench.quality")

    def add_arguments(parser):
        parser.add_argument("--samples", type=int, default=10)
        parser.add_argument("--out-dir", default=None)

    fake.add_arguments = add_arguments
    fake.run = lambda args: {"fid": 12.5, "samples": args.samples, "detail": {"x": 1}}
    fake.result_tag = lambda args: "" if args.samples == 7 else f"s{args.samples}"
    monkeypatch.setitem(sys.modules, "gan_accel.bench.quality", fake)
    monkeypatch.setattr(bench, "quality", fake, raising=False)
    assert main(["quality", "--samples", "7", "--out-dir", str(tmp_path)]) == 0
    (path,) = [p for p in tmp_path.glob("*-quality.json")]
    doc = json.loads(path.read_text())
    assert doc["suite"] == "quality" and doc["rows"] == [{"fid": 12.5, "samples": 7,
                                                          "suite": "quality"}]
    table = (tmp_path / f"{path.stem}.md").read_text()
    assert doc["config"]["samples"] == 7 and "| FID |" in table and "| 12.5 |" in table
    # the suite names its file (dataset, --tag), so runs of other datasets never overwrite
    assert main(["quality", "--samples", "9", "--out-dir", str(tmp_path)]) == 0
    assert [p.name.split("-quality")[1] for p in tmp_path.glob("*-quality-s9.json")] == [
        "-s9.json"]


def test_quality_result_tag_names_dataset_and_tag():
    from types import SimpleNamespace

    from gan_accel.bench.quality import result_tag

    assert result_tag(SimpleNamespace(dataset="mnist-5k", tag="")) == ""
    assert result_tag(SimpleNamespace(dataset="fashion-mnist", tag="")) == "fashion-mnist"
    assert result_tag(SimpleNamespace(dataset="mnist-5k", tag="part1")) == "part1"
    assert result_tag(SimpleNamespace(dataset="fashion-mnist", tag="a")) == "fashion-mnist-a"


def test_allow_interpreter_warns_when_the_kernels_were_imported_without_it(monkeypatch, capsys):
    """--allow-interpreter sets TRITON_INTERPRET=1, which the Triton modules read when they are
    imported: one already imported without it is said on stderr; otherwise nothing is said."""
    from gan_accel.bench import __main__ as bench_main

    args = argparse.Namespace(allow_interpreter=True)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    for name in bench_main.TRITON_KERNEL_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    bench_main._use_interpreter(args, torch.device("cpu"))
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setitem(sys.modules, "gan_accel.kernels.grad_penalty", object())
    bench_main._use_interpreter(args, torch.device("cpu"))
    assert "gan_accel.kernels.grad_penalty was imported before" in capsys.readouterr().err
