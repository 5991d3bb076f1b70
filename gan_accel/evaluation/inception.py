"""Inception FID on request, from a local weights file: never a download.

torchmetrics' ``FrechetInceptionDistance`` (its InceptionV3 is torch-fidelity's port of the
TensorFlow FID network) with ``feature_extractor_weights_path``: the weights come from the
file the user names (``--inception-weights PATH``, e.g. torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth``). Needs the ``[inception]`` extra
(``pip install 'gan-accel[inception]'``: torchmetrics + torch-fidelity). Without the file,
or without the extra, a one-line error; no code path here opens a network connection.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import UserError

__all__ = ["InceptionFID", "INCEPTION_SPACE"]

INCEPTION_SPACE = "inception-v3-pool3 (torchmetrics FrechetInceptionDistance, local weights)"
_BATCH = 100
_EXTRA = "pip install 'gan-accel[inception]' (torchmetrics and torch-fidelity)"


def _check_weights(path: Path) -> None:
    """A plain state dict of tensors (read with ``weights_only=True``: no code runs)."""
    if not path.is_file():
        raise UserError(f"--inception-weights {path} does not exist; give the path of a local "
                        "InceptionV3 FID weights file (e.g. torch-fidelity's weights-inception-"
                        "2015-12-05-6726825d.pth); nothing is downloaded")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UserError(f"--inception-weights {path} is not a readable PyTorch weights file "
                        f"({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"--inception-weights {path} does not hold a state dict of tensors")


class InceptionFID:
    """Inception FID (2048-d pool features) of generated images and its real-vs-real floor.

    Args:
        weights: the local InceptionV3 FID weights file.
        device: where the network runs.
    """

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu") -> None:
        self.path = Path(weights)
        _check_weights(self.path)
        missing = [m for m in ("torchmetrics", "torch_fidelity") if find_spec(m) is None]
        if missing:
            raise UserError(f"--inception-weights needs {' and '.join(missing)}: {_EXTRA}")
        from torchmetrics.image.fid import FrechetInceptionDistance

        try:
            self.metric = FrechetInceptionDistance(
                feature=2048, reset_real_features=False, normalize=False,
                feature_extractor_weights_path=str(self.path)).to(device)
        except RuntimeError as exc:  # load_state_dict: missing / unexpected keys, shapes
            raise UserError(f"--inception-weights {self.path} does not fit torchmetrics' "
                            f"InceptionV3 ({str(exc).splitlines()[0][:160]})") from None
        self.device = device

    def _update(self, images_u8: Tensor, real: bool) -> None:
        for i in range(0, images_u8.shape[0], _BATCH):
            x = images_u8[i: i + _BATCH]
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)  # grey -> RGB: the network takes 3 channels
            self.metric.update(x.to(self.device), real=real)

    def measure(self, real_a: Tensor, real_b: Tensor, fake: Tensor) -> dict[str, Any]:
        """FID(real_a, fake) and the floor FID(real_a, real_b); uint8 ``[n, C, R, R]`` each.

        Returns:
            ``inception_fid``, ``inception_fid_floor``, ``inception_fid_ratio`` and
            ``inception_feature_space`` (the space's name, with the weights file).
        """
        self.metric.reset_real_features = True
        self.metric.reset()
        self.metric.reset_real_features = False
        with torch.no_grad():
            self._update(real_a, real=True)
            self._update(real_b, real=False)
            floor = float(self.metric.compute())
            self.metric.reset()  # keeps the real features (reset_real_features=False)
            self._update(fake, real=False)
            fid = float(self.metric.compute())
        return {"inception_fid": fid, "inception_fid_floor": floor,
                "inception_fid_ratio": fid / floor if floor > 0 else float("inf"),
                "inception_feature_space": f"{INCEPTION_SPACE}: {self.path}"}
