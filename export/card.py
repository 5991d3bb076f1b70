"""The model card of an exported generator: what a front end needs to offer its controls.

The HTTP server's ``GET /metadata`` and the playground's ``model.json`` both start from
:func:`describe_model`: the metadata's latent layout, classes and codes, the pixel range, the
image shape (read from one generated image, so a colour or 64-pixel model needs nothing
else) and the latent applications it supports (:func:`gan_accel.latent_apps.model_card`).
"""

from __future__ import annotations

from pathlib import Path

from .. import latent_apps
from .runtime import OnnxGenerator


def describe_model(model: Path, providers=None) -> dict:
    """The model card of ``model`` (an .onnx file); ModelFileError for a file that is not a
    gan-accel export."""
    gen = OnnxGenerator(model, providers=list(providers) if providers else None, threads=1,
                        save_optimized=False)
    try:
        shape = gen.sample(1, seed=0).shape[1:]  # [C, H, W]
    finally:
        gen.close()
    m = gen.meta
    card = latent_apps.model_card(m.latent, m.variant, m.output_range, tuple(shape))
    card.update(dtype=m.dtype, io_dtype=m.io_dtype, step=m.step, model_file=Path(model).name)
    return card
