"""A trained PyTorch generator behind the served-generator interface (numpy in, numpy out).

``EagerGenerator(variant)`` lets a checkpoint go wherever an :class:`OnnxGenerator` or a
:class:`~export.aoti.Pt2Generator` goes (bulk sampling, benchmarks): same latent layout
(the variant's :class:`~gan_accel.latent.LatentSpec`), same checks, same outputs.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import __version__
from ..latent import LATENT_FIELDS
from .metadata import ModelMeta
from .runtime import ServedGenerator


class EagerGenerator(ServedGenerator):
    """``variant.G`` in eval mode under ``torch.inference_mode`` on ``device``."""

    def __init__(self, variant, device: str | torch.device = "cpu", source: str = "",
                 step: int | None = None, ema: bool = False):
        self.device = torch.device(device)
        self.G = variant.G.to(self.device).eval()
        latent = {k: getattr(variant.latent, k) for k in LATENT_FIELDS}
        self.meta = ModelMeta(variant=variant.name, output_range=str(variant.output_range),
                              step=step, source=source, ema=ema, exporter="none", **latent,
                              versions={"gan_accel": __version__, "torch": torch.__version__})
        self.input_names = self.meta.input_names
        self.engine = {"engine": "eager", "torch": torch.__version__, "model": source,
                       "device": str(self.device), "dtype": "float32",
                       "threads": torch.get_num_threads() if self.device.type == "cpu" else None}

    def __repr__(self) -> str:
        return f"EagerGenerator({self.meta.variant}, device={self.device})"

    def run(self, z: np.ndarray, label: np.ndarray | None = None,
            codes: np.ndarray | None = None) -> np.ndarray:
        feeds = self.check_inputs(z, label, codes)
        with torch.inference_mode():
            out = self.G(**{k: torch.from_numpy(v).to(self.device) for k, v in feeds.items()})
        return out.float().cpu().numpy()


def load_eager(checkpoint, best: bool = False, ema: bool | None = None,
               device: str | torch.device = "cpu") -> EagerGenerator:
    """The :class:`EagerGenerator` of a run's checkpoint (``load_trained``'s choice of G)."""
    from ..checkpoints import load_trained

    variant, meta = load_trained(checkpoint, "best" if best else "last", ema, device)
    step = (meta.get("position") or {}).get("step")
    return EagerGenerator(variant, device, str(meta.get("checkpoint", "")),
                          int(step) if step is not None else None, bool(meta["ema"]))
