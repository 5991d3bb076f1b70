"""Engine options as onnxruntime's documentation advises them, and their record: in the
sampler's ``engine`` dict, in bulk manifests (test_bulk) and in the bench rows."""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
import pytest
import torch
from gan_accel.export import runtime
from gan_accel.export.onnx_export import export_generator
from gan_accel.export.runtime import CPU, CUDA, TENSORRT, OnnxGenerator

from gan_accel.variants import build_variant, recipe_config


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    v = build_variant(recipe_config("dcgan")).eval()
    path = tmp_path_factory.mktemp("engine") / "g.onnx"
    export_generator(v, path, validate=False)
    return path


def test_engine_records_every_cpu_choice_and_saves_the_optimised_graph(model):
    gen = OnnxGenerator(model, providers=[CPU], threads=2)
    e = gen.engine
    assert e["engine"] == "onnxruntime" and e["onnxruntime"] == ort.__version__
    assert e["providers"] == [CPU] and e["dtype"] == "float32"
    assert e["graph_optimization_level"] == "all" and e["execution_mode"] == "sequential"
    assert (e["threads"], e["parallel"], e["intra_op_threads"], e["inter_op_threads"]) == (
        2, "batch", 1, 1)
    assert e["spin"] is False and e["dynamic_block_base"] == "4"
    assert e["io_binding"] is False and e["cuda_graph_batch"] is None
    saved = model.with_name("g.ort-all-cpu.onnx")
    assert e["optimized_model"] == str(saved) and saved.is_file()
    again = OnnxGenerator(saved, providers=[CPU], threads=1)  # loadable, same metadata
    assert again.meta == gen.meta and again.engine["optimized_model"] is None
    assert "optimised graph already" in again.engine["optimized_model_note"]
    z = gen.latent(9, seed=0)["z"]
    np.testing.assert_allclose(again.run(z), gen.run(z), atol=1e-6, rtol=0)


def test_level_threads_and_saving_are_choices(model, monkeypatch):
    gen = OnnxGenerator(model, providers=[CPU], threads=1, parallel="intra", level="basic",
                        save_optimized=False)
    e = gen.engine
    assert e["graph_optimization_level"] == "basic" and e["optimized_model"] is None
    assert (e["parallel"], e["intra_op_threads"]) == ("intra", 1)
    assert not model.with_name("g.ort-basic-cpu.onnx").exists()
    monkeypatch.setattr(runtime.os, "access", lambda *a: False)  # an unwritable folder
    e = OnnxGenerator(model, providers=[CPU], level="extended").engine
    assert e["optimized_model"] is None and "is not writable" in e["optimized_model_note"]
    with pytest.raises(ValueError, match="graph optimisation level must be one of"):
        OnnxGenerator(model, providers=[CPU], level="max")
    with pytest.raises(ValueError, match="cuda_graph_batch needs the CUDA execution provider"):
        OnnxGenerator(model, providers=[CPU], cuda_graph_batch=8)


def test_cuda_and_tensorrt_options_as_documented(model):
    (cuda, cpu) = runtime.provider_entries([CUDA, CPU], model, cuda_graph=True)
    assert cpu == CPU and cuda[0] == CUDA
    assert cuda[1]["cudnn_conv_algo_search"] == "HEURISTIC"
    assert cuda[1]["enable_cuda_graph"] == "1"
    assert runtime.provider_entries([CUDA], model)[0][1]["enable_cuda_graph"] == "0"
    (trt,) = runtime.provider_entries([TENSORRT], model)
    assert trt[1]["trt_engine_cache_enable"] == "True"
    assert trt[1]["trt_engine_cache_path"] == str(model.with_name("g.trt-cache"))
    mine = (CUDA, {"device_id": "1"})
    assert runtime.provider_entries([mine], model) == [mine]  # given options are kept


def test_default_providers_prefer_tensorrt_then_cuda_when_installed(monkeypatch):
    for available, tensorrt, want in (
            ([CPU], None, [CPU]),
            ([CUDA, CPU], None, [CUDA, CPU]),
            ([TENSORRT, CUDA, CPU], None, [TENSORRT, CUDA, CPU]),
            ([TENSORRT, CUDA, CPU], False, [CUDA, CPU])):
        monkeypatch.setattr(runtime.ort, "get_available_providers", lambda a=available: a)
        assert runtime.default_providers(tensorrt) == want


def test_bench_rows_carry_the_engine_choices():
    from gan_accel.bench import common, inference

    ctx = common.Context(device=torch.device("cpu"), threads=1,
                         budget=common.TimingBudget.quick(), quick=True, log=lambda *a: None)
    args = argparse.Namespace(model="dcgan", checkpoint=None, batches="1,9",
                              inference_backends="eager,ort-cpu", bulk_images=300, rounds=2)
    result = inference.run(args, ctx)
    rows = {(r["backend"], r["batch"]): r for r in result.rows}
    assert set(rows) == {("eager", 1), ("eager", 9), ("ort-cpu", 1), ("ort-cpu", 9),
                         ("bulk:ort-cpu", 9)}
    bulk = rows["bulk:ort-cpu", 9]  # bulk sampling right after the engine's row, same batch
    assert bulk["images"] == 300 and bulk["shards"] == 1 and bulk["images_per_s"] > 0
    assert bulk["engine_before_images_per_s"] == rows["ort-cpu", 9]["images_per_s"]
    engine = (bulk["engine_before_images_per_s"] + bulk["engine_after_images_per_s"]) / 2
    assert bulk["vs_engine_row"] == pytest.approx(bulk["images_per_s"] / engine, rel=1e-2)
    assert result.config["ratios"]["9"]["bulk_fp32_vs_engine"] == bulk["vs_engine_row"]
    for b in (1, 9):
        e = rows["ort-cpu", b]["engine"]
        assert rows["ort-cpu", b]["status"] == "ok" and e["providers"] == [CPU]
        assert e["graph_optimization_level"] == "all" and e["threads"] == 1
        assert e["optimized_model"].endswith(".ort-all-cpu.onnx")
        assert rows["eager", b]["engine"]["engine"] == "eager"
        assert "2 interleaved rounds" in rows["ort-cpu", b]["timer"]
    assert result.config["ratios"]["9"]["best"] == "ort-cpu"
    assert any(n.startswith("measured: batch 1:") for n in result.notes)


@pytest.mark.gpu
@pytest.mark.skipif(CUDA not in ort.get_available_providers() or not torch.cuda.is_available(),
                    reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_graph_replays_a_fixed_batch(model):
    gen = OnnxGenerator(model, providers=[CUDA, CPU], cuda_graph_batch=16)
    assert gen.engine["cuda_graph_batch"] == 16 and gen.engine["io_binding"]
    opts = gen.engine["provider_options"][CUDA]
    assert opts["cudnn_conv_algo_search"] == "HEURISTIC" and opts["enable_cuda_graph"] == "1"
    cpu = OnnxGenerator(model, providers=[CPU])
    for seed in (0, 1):  # capture, then replay with new inputs
        z = cpu.latent(16, seed=seed)["z"]
        np.testing.assert_allclose(gen.run(z), cpu.run(z), atol=1e-4)
    with pytest.raises(ValueError, match="replays a CUDA graph for batch 16"):
        gen.run(cpu.latent(8, seed=0)["z"])
