"""``POST /generate``: the request body, its limits, and the one check every request passes.

The body is a JSON object::

    {"seed": 7, "n": 16, "format": "png"}                   # n images drawn from a seed
    {"z": [[0.1, ...], ...], "label": [3, 3], "format": "npz"}   # explicit latents (cgan)
    {"z": [[...]], "codes": [[1, 0, ..., 0.5, -0.2]]}        # InfoGAN: explicit codes

* ``seed`` (int >= 0) or ``z`` (``[n][z_dim]`` numbers), not both; neither: a fresh seed,
  reported in the ``X-Seed`` header. A seed draws exactly what
  ``OnnxGenerator(model).sample(n, seed=seed, label=label)`` draws.
* ``label``: an int for all n images or one per image; the cGAN class, or InfoGAN's
  categorical code. With ``z``, a cGAN needs it.
* ``codes``: InfoGAN's ``[n][cat_dim + cont_dim]`` (one-hot ++ continuous); with ``z`` an
  InfoGAN needs it; not together with ``label``.
* ``n``: images, 1 .. ``Limits.max_images`` (default 1; with ``z``, the rows of ``z``).
* ``format``: ``png`` (one image, or a grid of n with ``nrow`` per row) or ``npz`` (uint8
  ``images`` [n, H, W] or [n, H, W, C] plus the latent arrays fed).

:func:`parse_generate` turns the raw body into a normalised dict (a seed always present when
no ``z`` was given) or raises :class:`RequestError` with an HTTP status and a one-line message.
The server calls it before a request is queued, so a bad request never reaches a batch.
"""

from __future__ import annotations

import enum
import json
import math
import secrets
from dataclasses import dataclass

from ...latent import LatentSpec

MAX_SEED = 2**63 - 1


class Format(str, enum.Enum):
    PNG = "png"
    NPZ = "npz"

    @property
    def media_type(self) -> str:
        return "image/png" if self is Format.PNG else "application/octet-stream"


FIELDS = ("seed", "z", "label", "codes", "n", "format", "nrow")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how many may wait (the overload bound)."""

    max_images: int = 256  # n per request
    max_body_bytes: int = 1 << 20  # 1 MiB: 256 rows of a 100-wide z as JSON text fit
    max_queue: int = 256  # requests admitted (waiting or running) before 503

    def __post_init__(self):
        for name in ("max_images", "max_body_bytes", "max_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx/5xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message: str) -> RequestError:
    return RequestError(400, message)


def _int(body: dict, key: str, lo: int, hi: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{key} must be an integer, got {json.dumps(value)[:40]}")
    if not lo <= value <= hi:
        raise _bad(f"{key} {value} is out of range {lo}..{hi}")
    return value


def _rows(body: dict, key: str, width: int, n: int | None) -> list[list[float]] | None:
    """``body[key]`` as ``[rows][width]`` finite numbers (one flat row is accepted as n=1)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, list) and value and all(_is_number(x) for x in value):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise _bad(f"{key} must be a list of rows, each a list of {width} numbers")
    for i, row in enumerate(value):
        if len(row) != width:
            raise _bad(f"{key} row {i} has {len(row)} numbers; this model takes {width}")
        if not all(_is_number(x) for x in row):
            raise _bad(f"{key} row {i} holds a value that is not a number")
        if not all(math.isfinite(x) for x in row):
            raise _bad(f"{key} row {i} holds NaN or infinity")
    if n is not None and len(value) != n:
        raise _bad(f"{key} has {len(value)} rows but z has {n}; give one per image")
    return value


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _labels(body: dict, spec: LatentSpec, n: int) -> int | list[int] | None:
    value = body.get("label")
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != n:
            raise _bad(f"label has {len(value)} entries for {n} images; give one int for all "
                       "or one per image")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
            raise _bad("label must hold integers")
    elif isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"label must be an integer or a list of integers, got "
                   f"{json.dumps(value)[:40]}")
    try:
        spec.check_class(value, "label")
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return value


def parse_body(body: bytes) -> dict:
    """The JSON object in ``body`` (400 otherwise)."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad(f"the body is not valid JSON ({exc.__class__.__name__}: "
                   f"{str(exc).splitlines()[0][:80]}); send a JSON object like "
                   '{"seed": 0, "n": 4}') from None
    if not isinstance(doc, dict):
        raise _bad('the body must be a JSON object like {"seed": 0, "n": 4}')
    return doc


def parse_generate(body: bytes, spec: LatentSpec, limits: Limits) -> dict:
    """Check a ``POST /generate`` body against the model's latent layout and the limits.

    Returns the normalised request: ``n``, ``format``, ``nrow``, ``seed`` (drawn here when
    neither ``seed`` nor ``z`` was given) or ``z``, and ``label`` / ``codes`` when given.
    Raises :class:`RequestError` (400 for anything the client got wrong).
    """
    doc = parse_body(body)
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}")
    try:
        fmt = Format(doc.get("format", Format.PNG.value))
    except ValueError:
        raise _bad(f"format {json.dumps(doc.get('format'))[:40]} is unknown; use "
                   f"{' or '.join(f.value for f in Format)}") from None
    n = _int(doc, "n", 1, limits.max_images)
    seed = _int(doc, "seed", 0, MAX_SEED)
    z = _rows(doc, "z", spec.z_dim, None)
    if z is not None:
        if seed is not None:
            raise _bad("pass either seed or z, not both")
        if n is not None and n != len(z):
            raise _bad(f"n is {n} but z has {len(z)} rows; drop n or make them agree")
        n = len(z)
        if n > limits.max_images:
            raise _bad(f"z has {n} rows; this server allows at most {limits.max_images} "
                       "images per request")
    n = n or 1
    nrow = _int(doc, "nrow", 1, limits.max_images)
    if nrow is not None and fmt is not Format.PNG:
        raise _bad("nrow lays out a PNG grid; drop it with format npz")
    if doc.get("codes") is not None and not spec.code_dim:
        raise _bad("codes: this model takes no codes (only InfoGAN models do)")
    codes = _rows(doc, "codes", spec.code_dim, n) if spec.code_dim else None
    label = _labels(doc, spec, n)
    if codes is not None and label is not None:
        raise _bad("pass either label (the categorical code) or codes, not both")
    if z is not None and spec.num_classes and label is None:
        raise _bad(f"label is required with z: this model is conditioned on a class "
                   f"0..{spec.num_classes - 1}")
    if z is not None and spec.code_dim and codes is None:
        raise _bad(f"codes is required with z: this model takes {spec.code_dim} code values "
                   f"per image (one-hot {spec.cat_dim} ++ {spec.cont_dim} continuous)")
    if codes is not None and spec.cat_dim:
        for i, row in enumerate(codes):
            if sorted(row[:spec.cat_dim]) != [0] * (spec.cat_dim - 1) + [1]:
                raise _bad(f"codes row {i}: the first {spec.cat_dim} values must be one-hot "
                           "(one 1, the rest 0)")
    out = {"n": n, "format": fmt.value, "nrow": nrow}
    if z is None:
        out["seed"] = secrets.randbits(63) if seed is None else seed
    else:
        out["z"] = z
    if label is not None:
        out["label"] = label
    if codes is not None:
        out["codes"] = codes
    return out
