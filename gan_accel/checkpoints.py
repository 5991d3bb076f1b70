"""Checkpoints: safetensors for every tensor, JSON for everything else, written atomically.

A checkpoint ``ckpt-<step>`` is two files in ``RUN_DIR/checkpoints``: ``.safetensors`` (model
weights, optimizer moments, RNG states) and ``.json`` (config, counters, the SHA-256 of the
tensor file). Each is written to a temporary name, flushed, fsynced and renamed; the JSON is
written last, so a checkpoint without its JSON (a kill mid-write) is ignored, and one whose
checksum does not match is reported as corrupt. Loading never executes code from a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import TrainConfig
from .errors import CheckpointError
from .variants import Variant, build_variant

CKPT_RE = re.compile(r"^ckpt-(\d{8})\.json$")
FORMAT = "gan-accel-checkpoint/1"
# Key layout of a checkpoint's tensor file: the variant's state_dict under MODEL (so its G is
# under MODEL + "G."), the EMA generator's under EMA_G, the rest (optimizers, RNG) elsewhere.
MODEL = "model."
EMA = "ema."
EMA_G = EMA + "module."


# ---------------------------------------------------------------------------------------------
# nested state <-> (flat tensors, JSON skeleton)
# ---------------------------------------------------------------------------------------------
def flatten_state(obj, prefix: str, tensors: dict[str, torch.Tensor]):
    """Move every tensor in a nested dict/list into ``tensors``; return a JSON-able skeleton."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten_state(v, f"{prefix}.{k}", tensors)]
                             for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    return obj


def unflatten_state(skeleton, tensors: dict[str, torch.Tensor]):
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def with_prefix(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in state.items()}


def under_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` whose key starts with ``prefix``, the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------------------------
# atomic file writes
# ---------------------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# save / find / load
# ---------------------------------------------------------------------------------------------
def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(folder: Path, name: str, tensors: dict[str, torch.Tensor],
                    meta: dict) -> Path:
    """Write ``name.safetensors`` then ``name.json`` (with the tensor file's SHA-256)."""
    folder.mkdir(parents=True, exist_ok=True)
    st_path, json_path = folder / f"{name}.safetensors", folder / f"{name}.json"
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(st_path, lambda p: save_file(tensors, str(p)))
    meta = {**meta, "format": FORMAT, "tensors": st_path.name,
            "sha256": sha256_file(st_path)}
    atomic_write_text(json_path, json.dumps(meta, indent=1, allow_nan=True))
    return json_path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The ``ckpt-*.json`` files of a run, oldest first (by step)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CKPT_RE.match(p.name))


def read_meta(json_path: Path) -> dict:
    try:
        meta = json.loads(Path(json_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint metadata {json_path} is unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a gan-accel checkpoint")
    return meta


def load_checkpoint(json_path: Path, verify: bool = True) -> tuple[dict, dict]:
    """Load one checkpoint: (meta, tensors). Verifies the checksum first."""
    json_path = Path(json_path)
    meta = read_meta(json_path)
    st_path = json_path.parent / meta["tensors"]
    if not st_path.is_file():
        raise CheckpointError(f"{st_path} is missing; the checkpoint {json_path} is incomplete")
    if verify and sha256_file(st_path) != meta["sha256"]:
        raise CheckpointError(f"{st_path} is corrupt (checksum mismatch)")
    try:
        tensors = load_file(str(st_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{st_path} is corrupt ({exc})") from None
    return meta, tensors


def resolve_checkpoint(path: str | os.PathLike, which: str = "last") -> Path:
    """Find a checkpoint's JSON from a run dir, a checkpoints dir or a JSON/safetensors path.

    ``which`` is 'last' (newest by step) or 'best' (the run's best.json).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist; pass a run directory "
                              "written by gan_accel.train")
    if p.is_file():
        if p.suffix == ".safetensors":
            p = p.with_suffix(".json")
        if p.suffix != ".json":
            raise CheckpointError(f"{path} is not a checkpoint (.json/.safetensors) or run dir")
        return p
    if which == "best":
        best = p / "best" / "best.json"
        if best.is_file():
            return best
        raise CheckpointError(f"{p} has no best checkpoint; train with --eval-every N")
    run = p.parent if p.name == "checkpoints" else p
    found = list_checkpoints(run)
    if not found:
        raise CheckpointError(f"{p} holds no checkpoint; pass a run directory written by "
                              "gan_accel.train")
    return found[-1]


def load_latest_good(run_dir: Path) -> tuple[Path, dict, dict]:
    """Newest checkpoint of a run that verifies; a corrupt newest one names the one before."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir} holds no checkpoint to resume from")
    latest = found[-1]
    try:
        meta, tensors = load_checkpoint(latest)
    except CheckpointError as exc:
        previous = found[-2] if len(found) > 1 else None
        hint = (f"resume from the previous good one with --resume {previous}" if previous
                else "no earlier checkpoint exists; start a new run")
        raise CheckpointError(f"{exc}; {hint}") from None
    return latest, meta, tensors


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for json_path in list_checkpoints(run_dir)[:-keep]:
        meta_tensors = json_path.with_suffix(".safetensors")
        json_path.unlink(missing_ok=True)
        meta_tensors.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# a trained model
# ---------------------------------------------------------------------------------------------
def load_trained(path: str | Path, which: str = "last", ema: bool | None = None,
                 device: str | torch.device = "cpu") -> tuple[Variant, dict]:
    """Load ``(variant, meta)`` from a run dir or checkpoint file, in eval mode.

    ``variant.G`` holds the EMA generator's weights when the run kept one and ``ema`` is not
    False (``ema=True``: an error if it kept none); ``meta["ema"]`` says which was loaded.
    Raises CheckpointError for a missing, corrupt or generator-less checkpoint.
    """
    json_path = resolve_checkpoint(path, which)
    meta, tensors = load_checkpoint(json_path)
    cfg = TrainConfig.from_dict(meta["config"])
    variant = build_variant(cfg)
    model_state = under_prefix(MODEL, tensors)
    if not under_prefix("G.", model_state):
        raise CheckpointError(f"{json_path} holds no generator weights (a discriminator-only "
                              "checkpoint?); pass a checkpoint written by gan_accel.train")
    ema_state = under_prefix(EMA_G, tensors)
    if ema and not ema_state:
        raise CheckpointError(f"{json_path} has no EMA generator (trained with --ema 0); drop "
                              "--ema")
    use_ema = bool(ema_state) and ema is not False
    if use_ema:
        model_state.update(with_prefix("G.", ema_state))
    try:
        variant.load_state_dict(model_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{json_path} does not match a {cfg.model} model "
                              f"({str(exc).splitlines()[0]})") from None
    meta["checkpoint"] = str(json_path)
    meta["ema"] = use_ema
    return variant.to(device).eval(), meta
