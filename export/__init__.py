"""ONNX export of gan-accel generators, and a torch-free runtime to serve them.

    from export import export_generator, OnnxGenerator
    report = export_generator(variant, "g.onnx")        # needs torch (export.onnx_export)
    images = OnnxGenerator("g.onnx").sample(64, seed=0)  # needs only onnxruntime + numpy

CLI: ``python -m gan_accel.export --checkpoint RUN_DIR --out g.onnx``. Importing this package
imports neither torch nor onnxruntime; each name loads its module on first use.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export_generator": "onnx_export", "export_checkpoint": "onnx_export",
    "ExportError": "onnx_export", "prepare_generator": "onnx_export",
    "OnnxGenerator": "runtime", "ModelFileError": "runtime", "ModelMeta": "metadata",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
