"""The saved form of a benchmark result: its schema, where it goes, how to read it back."""

from __future__ import annotations

import json
from pathlib import Path

from gan_accel.errors import UserError

SCHEMA = "gan-accel-bench/1"
# Relative to the working directory: in a checkout run from its root this is the repository's
# bench/results/; an installed package never writes inside site-packages.
DEFAULT_OUT = Path("bench") / "results"

# What each suite's rows are keyed by, and the metric a report compares (higher is better?).
SUITES_META: dict[str, dict] = {
    "inference": {"key": ("model", "backend", "batch"), "metric": "images_per_s",
                  "higher_is_better": True},
    "train": {"key": ("model", "mode", "batch"), "metric": "images_per_s",
              "higher_is_better": True},
    "kernels": {"key": ("op", "shape", "impl", "pass"), "metric": "us_per_call",
                "higher_is_better": False},
    "profile": {"key": ("name",), "metric": "self_ms", "higher_is_better": False},
    "quality": {"key": ("model", "mode"), "metric": "fid", "higher_is_better": False},
    "serve": {"key": ("engine", "mode", "concurrency", "images_per_request", "batch"),
              "metric": "images_per_s", "higher_is_better": True},
}


def load_document(path: Path) -> dict:
    """Read a result JSON written by :func:`write_result`; a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"bench report: {path} does not exist; pass a result .json file "
                         f"(e.g. {DEFAULT_OUT}/*.json)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"bench report: {path} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UserError(f"bench report: {path} is not a gan-accel bench result "
                         f"(expected schema {SCHEMA!r})")
    doc["_path"] = str(path)
    return doc


def fmt(value, digits: int = 3) -> str:
    """Compact human formatting for tables: None -> 'N/A'."""
    if value is None:
        return "N/A"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)
