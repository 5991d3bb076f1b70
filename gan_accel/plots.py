"""Pictures: sample grids and loss curves."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torchvision.utils import save_image

from .atomic import atomic_write_bytes
from .ranges import OutputRange


def save_grid(images: torch.Tensor, path: Path, output_range: str, nrow: int = 8,
              scale: int = 2) -> None:
    """Save ``images`` [N, C, H, W] (C 1 or 3) as one RGB PNG grid (upscaled ``scale``x for
    legibility; torchvision repeats a single channel into grey RGB)."""
    x = OutputRange(output_range).to_unit(images.detach().float().cpu())
    if scale > 1:
        x = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest")
    png = io.BytesIO()
    save_image(x, png, format="png", nrow=nrow, padding=2, pad_value=0.5)
    atomic_write_bytes(path, png.getvalue())  # a full disk leaves no half-written PNG


def plot_losses(metrics_jsonl: Path, out_png: Path, title: str = "") -> None:
    """Plot every ``loss_*`` series of a metrics JSONL file against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list, list]] = {}
    for line in Path(metrics_jsonl).read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") != "train":
            continue
        for key, value in row.items():
            if key.startswith("loss_") and value is not None:
                xs, ys = series.setdefault(key, ([], []))
                xs.append(row["step"])
                ys.append(value)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, (xs, ys) in sorted(series.items()):
        ax.plot(xs, ys, label=key[5:], linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write_bytes(out_png, png.getvalue())
