"""Generators for serving tests: random-weight exports of the variants, and a colour one.

The colour generator is built by hand with ``onnx.helper`` (a Gemm, a Sigmoid and a Reshape
to [B, 3, 32, 32]) and carries gan-accel metadata, so the server and the page are tested on
a 3-channel, 32-pixel model before a trained one exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from gan_accel.export.metadata import OUTPUT_NAME, ModelMeta
from onnx import TensorProto, helper, numpy_helper


def export_variant(name: str, path: Path, seed: int = 0) -> Path:
    """A random-weight export of variant ``name`` (the preset's nets) at ``path``."""
    import torch
    from gan_accel.export.onnx_export import export_generator

    from gan_accel.variants import build_variant, recipe_config

    torch.manual_seed(seed)
    variant = build_variant(recipe_config(name)).eval()
    export_generator(variant, path, meta={"step": 7}, validate=False)
    return path


def colour_generator(path: Path, z_dim: int = 8, size: int = 32, seed: int = 0) -> Path:
    """A [B, 3, size, size] generator in [0, 1] with gan-accel metadata."""
    rng = np.random.default_rng(seed)
    pixels = 3 * size * size
    w = numpy_helper.from_array((rng.standard_normal((z_dim, pixels)) * 0.5)
                                .astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(pixels, np.float32), "b")
    shape = numpy_helper.from_array(np.array([-1, 3, size, size], np.int64), "shape")
    nodes = [helper.make_node("Gemm", ["z", "w", "b"], ["flat"]),
             helper.make_node("Sigmoid", ["flat"], ["unit"]),
             helper.make_node("Reshape", ["unit", "shape"], [OUTPUT_NAME])]
    graph = helper.make_graph(
        nodes, "colour", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", z_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["B", 3, size, size])],
        [w, b, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    meta = ModelMeta(variant="colour-test", z_dim=z_dim, output_range="unit", step=1, opset=18,
                     exporter="onnx.helper")
    helper.set_model_props(model, meta.to_props())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
