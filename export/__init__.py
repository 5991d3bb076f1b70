"""Export gan-accel generators (ONNX fp32/fp16/int8, AOTInductor .pt2) and serve them.

    from gan_accel.export import export_generator, OnnxGenerator
    report = export_generator(variant, "g.onnx")        # needs torch (export.onnx_export)
    images = OnnxGenerator("g.onnx").sample(64, seed=0)  # needs only onnxruntime + numpy
    quantize_generator(variant, "g-int8.onnx")           # int8, kept only if its gate passes
    export_pt2(variant, "g.pt2"); Pt2Generator("g.pt2")  # AOTInductor, dynamic batch

Bulk sampling into shards: :mod:`export.bulk`. CLI: ``python -m gan_accel.export
--checkpoint RUN_DIR --out g.onnx [--format onnx|int8|pt2]``. Importing this package imports
neither torch nor onnxruntime; each name loads its module on first use.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export_generator": "onnx_export", "export_checkpoint": "onnx_export",
    "ExportError": "onnx_export", "prepare_generator": "onnx_export",
    "OnnxGenerator": "runtime", "ModelFileError": "runtime", "ModelMeta": "metadata",
    "quantize_generator": "quantize", "quantize_checkpoint": "quantize",
    "QualityGateError": "quantize", "export_pt2": "aoti", "export_pt2_checkpoint": "aoti",
    "Pt2Generator": "aoti", "EagerGenerator": "eager", "BulkPlan": "bulk",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
