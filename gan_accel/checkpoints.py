"""Checkpoints: safetensors for every tensor, JSON for everything else, written atomically.

A checkpoint ``ckpt-<step>`` is two files in ``RUN_DIR/checkpoints``: the tensor file
``ckpt-<step>.<hash>.safetensors`` (model weights, optimizer moments, RNG states; ``<hash>``
starts its SHA-256) and ``ckpt-<step>.json`` (config, counters, the tensor file's name and
SHA-256). Each is written to a temporary name, flushed, fsynced and renamed, the folder
fsynced after each rename; the JSON is written last. So a tensor file without its JSON (a kill
mid-write) is ignored, and rewriting a checkpoint (the same step, or ``best``) never replaces
the tensor file its current JSON names: at every moment the JSON and the file it names agree.
Loading checks the JSON's types and the checksum and never executes code from a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import (  # noqa: F401 (atomic_write_text: the run's other files use it)
    atomic_write_text,
    disk_full_error,
    is_disk_full,
    publish,
    write_temp,
)
from .config import TrainConfig, field_type
from .errors import CheckpointError, UserError
from .variants import VARIANTS, Variant, build_variant

CKPT_RE = re.compile(r"^ckpt-(\d{8})\.json$")
TENSORS_SUFFIX = ".safetensors"
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


def checkpoint_name(path: Path) -> str:
    """The checkpoint a file belongs to: ``ckpt-00000012`` for its JSON and tensor files."""
    return Path(path).name.split(".", 1)[0]


def _tensor_files(folder: Path, name: str) -> list[Path]:
    """Every tensor file of checkpoint ``name`` in ``folder`` (the current one, leftovers)."""
    return [p for p in folder.glob(f"{name}.*") if p.name.endswith(TENSORS_SUFFIX)
            and checkpoint_name(p) == name]


def save_checkpoint(folder: Path, name: str, tensors: dict[str, torch.Tensor],
                    meta: dict) -> Path:
    """Write ``name.<hash>.safetensors``, then ``name.json`` naming it (with its SHA-256).

    Once the JSON is in place, the tensor files of ``name`` it does not name (an earlier
    version, a leftover of a killed write) are removed. When the disk refuses a write nothing
    new is left behind and the previous checkpoint is intact: DiskFullError (naming the
    checkpoint and the bytes it needs) when the disk or quota is full, CheckpointError for
    any other refusal (read-only, permissions).
    """
    folder = Path(folder)
    json_path, st_path = folder / f"{name}.json", None
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    needed = sum(t.numel() * t.element_size() for t in tensors.values())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = write_temp(folder, name + TENSORS_SUFFIX, lambda p: save_file(tensors, str(p)))
        try:
            sha = sha256_file(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        st_path = folder / f"{name}.{sha[:16]}{TENSORS_SUFFIX}"
        needed = tmp.stat().st_size
        publish(tmp, st_path)
        meta = {**meta, "format": FORMAT, "tensors": st_path.name, "sha256": sha}
        text = json.dumps(meta, indent=1, allow_nan=True)
        needed += len(text.encode())
        atomic_write_text(json_path, text)
    except BaseException as exc:
        if st_path is not None and _named_tensor_file(json_path) != st_path:
            st_path.unlink(missing_ok=True)  # published, but no JSON names it
        if is_disk_full(exc):
            raise disk_full_error(json_path, needed, _intact(folder, name), exc) from None
        if isinstance(exc, (OSError, SafetensorError)):
            raise CheckpointError(f"cannot write checkpoint {json_path} ({_reason(exc)}); "
                                  f"{_intact(folder, name)}") from None
        raise
    for old in _tensor_files(folder, name):
        if old != st_path:
            old.unlink(missing_ok=True)
    return json_path


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).strip()


def _intact(folder: Path, name: str) -> str:
    """What a failed write of checkpoint ``name`` in ``folder`` left as it was."""
    previous = folder / f"{name}.json"
    if not previous.is_file():
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        previous = found[-1] if found else None
    if previous is None:
        return "no earlier checkpoint exists; free disk space or choose another --out"
    return (f"the previous checkpoint {previous} is intact; free disk space or choose "
            "another --out")


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The ``ckpt-*.json`` files of a run, oldest first (by step)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CKPT_RE.match(p.name))


def _named_tensor_file(json_path: Path) -> Path | None:
    """The tensor file a checkpoint's JSON names, or None (no JSON, unreadable)."""
    try:
        return json_path.parent / read_meta(json_path)["tensors"]
    except (CheckpointError, OSError):
        return None


def _fail(json_path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{json_path} is not a valid gan-accel checkpoint ({what}); pass a "
                           "checkpoint written by gan_accel.train")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_config(config, json_path: Path) -> None:
    """The JSON's ``config``: a dict of TrainConfig fields, each of its field's type, valid."""
    if not isinstance(config, dict):
        raise _fail(json_path, f"config is a {type(config).__name__}, not an object")
    for f in dataclasses.fields(TrainConfig):
        if f.name not in config:
            continue
        value, kind = config[f.name], field_type(f)
        ok = ((value is None and f.default is None) or
              (kind is bool and isinstance(value, bool)) or
              (kind is int and _is_int(value)) or
              (kind is float and (_is_int(value) or isinstance(value, float))) or
              (kind is str and isinstance(value, str)))
        if not ok:
            raise _fail(json_path, f"config.{f.name} is {value!r}, not of type {kind.__name__}")
    if config.get("model") not in VARIANTS:
        raise _fail(json_path, f"config.model {config.get('model')!r} is not a known model")
    try:
        TrainConfig.from_dict(config).validate()
    except UserError as exc:
        raise _fail(json_path, f"config: {exc}") from None


def _check_meta(meta, json_path: Path) -> None:
    """The types of every field a loader reads; CheckpointError naming the first bad one."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a gan-accel checkpoint")
    name = meta.get("tensors")
    if not (isinstance(name, str) and name.endswith(TENSORS_SUFFIX)
            and Path(name).name == name and name not in (".", "..")):
        raise _fail(json_path, f"tensors is {name!r}, not a {TENSORS_SUFFIX} file beside it")
    sha = meta.get("sha256")
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise _fail(json_path, f"sha256 is {sha!r}, not 64 hex digits")
    _check_config(meta.get("config"), json_path)
    position = meta.get("position", {})
    if not (isinstance(position, dict)
            and all(_is_int(v) and v >= 0 for v in position.values())):
        raise _fail(json_path, f"position is {position!r}, not non-negative counts")
    for key in ("state", "variant"):
        if not isinstance(meta.get(key, {}), dict):
            raise _fail(json_path, f"{key} is a {type(meta[key]).__name__}, not an object")


def read_meta(json_path: Path) -> dict:
    """A checkpoint's JSON, its types checked (CheckpointError naming the file otherwise)."""
    try:
        meta = json.loads(Path(json_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint metadata {json_path} is unreadable ({exc})") from None
    _check_meta(meta, Path(json_path))
    return meta


def _tensor_refs(skeleton) -> list[str]:
    """The tensor keys a :func:`flatten_state` skeleton refers to."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return [skeleton["__tensor__"]]
        return [k for v in skeleton.values() for k in _tensor_refs(v)]
    if isinstance(skeleton, list):
        return [k for v in skeleton for k in _tensor_refs(v)]
    return []


def load_checkpoint(json_path: Path, verify: bool = True) -> tuple[dict, dict]:
    """Load one checkpoint: (meta, tensors). Verifies the types and the checksum first, then
    that every tensor the JSON refers to is in the tensor file."""
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
    missing = [k for k in _tensor_refs(meta.get("state", {})) if k not in tensors]
    if missing:
        raise CheckpointError(f"{st_path} lacks the tensor {missing[0]!r} that {json_path} "
                              f"refers to ({len(missing)} missing); the checkpoint is "
                              "incomplete")
    return meta, tensors


def _mismatch(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor],
              prefix: str) -> str | None:
    """How ``got`` fails to be a state dict like ``expected`` (keys under ``prefix``)."""
    missing = sorted(set(expected) - set(got))
    if missing:
        return f"no tensor {prefix + missing[0]!r}"
    unexpected = sorted(set(got) - set(expected))
    if unexpected:
        return f"an unexpected tensor {prefix + unexpected[0]!r}"
    for k in sorted(expected):
        if got[k].shape != expected[k].shape:
            return (f"tensor {prefix + k!r} has shape {tuple(got[k].shape)}, not "
                    f"{tuple(expected[k].shape)}")
    return None


def check_resumable(json_path: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """CheckpointError unless training can resume from this checkpoint: it holds a position,
    the training state, and a tensor of the right shape for every weight and buffer of the
    model its config names (and of the EMA generator when the run keeps one)."""
    json_path = Path(json_path)
    for key in ("position", "state"):
        if key not in meta:
            raise _fail(json_path, f"no {key}; it cannot be resumed")
    if not _is_int(meta["position"].get("step")):
        raise _fail(json_path, "position.step is missing")
    cfg = TrainConfig.from_dict(meta["config"])
    variant = build_variant(cfg)
    what = _mismatch(variant.state_dict(), under_prefix(MODEL, tensors), MODEL)
    if what is None and cfg.ema > 0:
        what = _mismatch(variant.G.state_dict(), under_prefix(EMA_G, tensors), EMA_G)
    if what is not None:
        raise CheckpointError(f"{json_path.parent / meta['tensors']} does not hold the "
                              f"{cfg.model} model of {json_path.name} ({what}); the checkpoint "
                              "is incomplete")


def resolve_checkpoint(path: str | os.PathLike, which: str = "last") -> Path:
    """Find a checkpoint's JSON from a run dir, a checkpoints dir or a JSON/safetensors path.

    ``which`` is 'last' (newest by step) or 'best' (the run's best.json).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist; pass a run directory "
                              "written by gan_accel.train")
    if p.is_file():
        if p.name.endswith(TENSORS_SUFFIX):
            p = p.with_name(checkpoint_name(p) + ".json")
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
    """Delete all but the newest ``keep`` checkpoints (each JSON before its tensor files),
    and tensor files no checkpoint names (leftovers of killed writes)."""
    folder = checkpoint_dir(run_dir)
    found = list_checkpoints(run_dir)
    for json_path in found[:-keep]:
        json_path.unlink(missing_ok=True)
    kept = {checkpoint_name(p): _named_tensor_file(p) for p in found[-keep:]}
    for p in folder.iterdir() if folder.is_dir() else ():
        name = checkpoint_name(p)
        if not (p.name.endswith(TENSORS_SUFFIX) and name.startswith("ckpt-")):
            continue
        if name not in kept or (kept[name] is not None and p != kept[name]):
            p.unlink(missing_ok=True)


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
    what = _mismatch(variant.state_dict(), model_state, MODEL)
    if what is None and use_ema:
        what = _mismatch(variant.G.state_dict(), ema_state, EMA_G)
    if what is not None:
        raise CheckpointError(f"{json_path} does not match a {cfg.model} model ({what}); pass "
                              "a checkpoint written by gan_accel.train")
    if use_ema:
        model_state.update(with_prefix("G.", ema_state))
    variant.load_state_dict(model_state)
    meta["checkpoint"] = str(json_path)
    meta["ema"] = use_ema
    return variant.to(device).eval(), meta
