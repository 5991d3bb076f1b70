"""Latent-space applications: class grids, interpolation, vector arithmetic, code sweeps.

One implementation for every front end: ``gan_accel.sample`` draws them from a checkpoint, the
HTTP server and the browser playground describe a model with :func:`model_card`. Each
function takes a pool of latents (``{input name: array}``, what :meth:`LatentSpec.sample`
drew, as numpy) and returns the latents to feed the generator; drawing the pool and running
the generator stay with the caller. torch-free: numpy only.

Errors a user can cause raise :class:`gan_accel.errors.UserError` naming the input (``what``).
"""

from __future__ import annotations

import enum
import re

import numpy as np

from .errors import UserError
from .latent import LatentSpec

MAX_STEPS = 64  # interpolation / sweep images per row
GRID_COLUMNS = 10  # class grids and sweeps: one row per class, this many latents across


class InterpolationPath(str, enum.Enum):
    """How interpolation moves the noise ``z`` (codes always move linearly)."""

    SLERP = "slerp"  # along the great circle, the norm interpolated linearly
    LINEAR = "linear"


class App(str, enum.Enum):
    """The applications; :func:`applications` says which a latent layout supports."""

    CLASS_GRID = "class_grid"  # row k: class k (cGAN label or InfoGAN categorical code)
    INTERPOLATION = "interpolation"
    ARITHMETIC = "arithmetic"
    CODE_SWEEP = "code_sweep"  # InfoGAN: one continuous code swept from -1 to 1


Latent = dict[str, np.ndarray]


def applications(spec: LatentSpec) -> list[App]:
    """The applications that make sense for a generator with this latent layout."""
    apps = [App.INTERPOLATION, App.ARITHMETIC]
    if spec.num_labels:
        apps.insert(0, App.CLASS_GRID)
    if spec.cat_dim and spec.cont_dim:
        apps.append(App.CODE_SWEEP)
    return apps


def model_card(spec: LatentSpec, variant: str, output_range: str,
               image_shape: tuple[int, int, int]) -> dict:
    """What a front end needs to offer a generator's controls (the server's metadata
    endpoint, the playground's ``model.json``): the latent layout, its classes and codes,
    the pixel range and image shape, and the applications it supports."""
    channels, height, width = image_shape
    return {
        "variant": variant,
        "latent": spec.to_meta(),
        "classes": spec.num_classes,
        "codes": {"categorical": spec.cat_dim, "continuous": spec.cont_dim,
                  "continuous_range": [-1.0, 1.0]} if spec.code_dim else None,
        "output_range": output_range,
        "image": {"channels": channels, "height": height, "width": width},
        "applications": [a.value for a in applications(spec)],
    }


def check_steps(k: int, what: str) -> int:
    if not 2 <= k <= MAX_STEPS:
        raise UserError(f"{what} {k}: use 2..{MAX_STEPS} steps per row")
    return k


def check_indices(indices, n: int, what: str) -> None:
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise UserError(f"{what}: sample index {bad[0]} is out of range 0..{n - 1}; draw more "
                        "samples or pick a smaller index")


def pick(latent: Latent, idx) -> Latent:
    idx = np.asarray(idx, dtype=np.int64)
    return {k: v[idx] for k, v in latent.items()}


def concat(parts: list[Latent]) -> Latent:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# --------------------------------------------------------------------------- class grid


def class_grid(spec: LatentSpec, pool: Latent, columns: int = GRID_COLUMNS) -> Latent:
    """``num_labels x columns``: row k = class / categorical code k, column j = the latent of
    sample j of ``pool`` (which needs at least ``columns`` rows)."""
    k = spec.num_labels
    if not k:
        raise UserError("a class grid needs a cgan or infogan model; this one has no classes "
                        "or categorical code")
    cols = np.tile(np.arange(columns), k)  # [k*columns]: sample j in column j
    rows = np.repeat(np.arange(k), columns)  # row r: class r
    latent = pick(pool, cols)
    if spec.num_classes:
        latent["label"] = rows.astype(np.int64)
    else:
        latent["codes"] = latent["codes"].copy()
        latent["codes"][:, :spec.cat_dim] = np.eye(spec.cat_dim, dtype=np.float32)[rows]
    return latent


# --------------------------------------------------------------------------- interpolation


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Straight-line interpolation ``[K, D]`` from ``a`` [D] to ``b`` [D] at ``t`` [K]."""
    return ((1 - t)[:, None] * a + t[:, None] * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation ``[K, D]`` from ``a`` [D] to ``b`` [D] at ``t`` [K] in [0, 1].

    Follows the great circle between the directions while interpolating the norm linearly
    with it (the standard GAN slerp); a straight line for (anti)parallel ends.
    """
    a64, b64, t64 = (np.asarray(x, dtype=np.float64) for x in (a, b, t))
    cos = a64 @ b64 / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    so = np.sin(omega)
    if abs(so) < 1e-6:
        return lerp(a, b, np.asarray(t, dtype=np.float32))
    wa = np.sin((1 - t64) * omega) / so  # [K]
    wb = np.sin(t64 * omega) / so
    return (wa[:, None] * a64 + wb[:, None] * b64).astype(np.float32)


def parse_pairs(text: str, n: int, what: str = "pairs") -> list[tuple[int, int]]:
    """``"0:1,2:3"`` -> ``[(0, 1), (2, 3)]``, each index checked against ``n`` samples."""
    pairs = []
    for item in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+):(\d+)", item)
        if not m:
            raise UserError(f"{what} item {item!r} is not I:J (two sample indices), e.g. "
                            "0:5,3:9")
        pair = (int(m.group(1)), int(m.group(2)))
        check_indices(pair, n, what)
        pairs.append(pair)
    return pairs


def default_pairs(n: int) -> list[tuple[int, int]]:
    """Up to 8 consecutive pairs of the first 16 samples: (0, 1), (2, 3), ..."""
    return [(i, i + 1) for i in range(0, min(n, 16) - 1, 2)]


def interpolation(pool: Latent, pairs: list[tuple[int, int]], steps: int,
                  path: InterpolationPath = InterpolationPath.SLERP) -> Latent:
    """One row of ``steps`` latents per pair, from sample i to sample j (ends included).

    ``z`` moves along ``path``; InfoGAN's codes move linearly; a cGAN label cannot be
    interpolated, so each row keeps the first end's class."""
    t = np.linspace(0, 1, steps, dtype=np.float32)
    move = slerp if InterpolationPath(path) is InterpolationPath.SLERP else lerp
    rows = []
    for i, j in pairs:
        row = {"z": move(pool["z"][i], pool["z"][j], t)}
        if "codes" in pool:
            row["codes"] = lerp(pool["codes"][i], pool["codes"][j], t)
        if "label" in pool:
            row["label"] = np.repeat(pool["label"][i:i + 1], steps)
        rows.append(row)
    return concat(rows)


# --------------------------------------------------------------------------- arithmetic

Term = tuple[float, list[int]]


def parse_arithmetic(expr: str, n: int, what: str = "arithmetic") -> list[Term]:
    """``"1,2,3 - 4,5 + 6"`` -> ``[(+1, [1, 2, 3]), (-1, [4, 5]), (+1, [6])]``: terms of
    sample indices, each standing for the mean of their latents."""
    text = expr.replace(" ", "")
    if not re.fullmatch(r"[+-]?\d+(,\d+)*([+-]\d+(,\d+)*)*", text):
        raise UserError(f"{what} {expr!r} is not valid: write terms of comma-separated sample "
                        "indices joined by + or -, e.g. '1,2,3 - 4,5 + 6'")
    terms = []
    for sign, body in re.findall(r"([+-]?)(\d+(?:,\d+)*)", text):
        idx = [int(i) for i in body.split(",")]
        check_indices(idx, n, what)
        terms.append((-1.0 if sign == "-" else 1.0, idx))
    return terms


def mean_latent(pool: Latent, idx: list[int]) -> Latent:
    """The mean of samples ``idx`` as one latent row (a cGAN label: the first sample's)."""
    mean = {k: v[idx].mean(0, keepdims=True).astype(np.float32)
            for k, v in pool.items() if k != "label"}
    if "label" in pool:
        mean["label"] = pool["label"][idx[:1]]
    return mean


def arithmetic(pool: Latent, terms: list[Term], noise: np.ndarray) -> Latent:
    """The signed sum of the terms' mean latents (over ``z`` and InfoGAN's code vector), then
    the same result with each row of ``noise`` [R, z_dim] added to ``z``: ``1 + R`` rows. A
    cGAN result keeps the label of the first index of the first term."""
    z = sum(s * pool["z"][idx].mean(0) for s, idx in terms)
    rows = 1 + len(noise)
    final = {"z": np.concatenate([z[None], z + noise]).astype(np.float32)}
    if "codes" in pool:
        codes = sum(s * pool["codes"][idx].mean(0) for s, idx in terms)
        final["codes"] = np.repeat(codes[None], rows, 0).astype(np.float32)
    if "label" in pool:
        final["label"] = np.repeat(pool["label"][terms[0][1][:1]], rows)
    return final


# --------------------------------------------------------------------------- code sweep


def code_sweep(spec: LatentSpec, z: np.ndarray, steps: int) -> Latent:
    """InfoGAN: one block per continuous code; in a block, row c = categorical code c with
    noise ``z[c]``, columns = that code from -1 to 1 over ``steps`` values, the other
    continuous codes at 0. ``z``: [cat_dim, z_dim]."""
    if not (spec.cat_dim and spec.cont_dim):
        raise UserError("a code sweep needs an infogan model (categorical and continuous "
                        "codes); this one has none")
    values = np.linspace(-1, 1, steps, dtype=np.float32)
    cat = np.repeat(np.arange(spec.cat_dim), steps)  # [cat_dim * steps]
    one_hot = np.eye(spec.cat_dim, dtype=np.float32)[cat]
    blocks = []
    for j in range(spec.cont_dim):
        cont = np.zeros((cat.shape[0], spec.cont_dim), np.float32)
        cont[:, j] = np.tile(values, spec.cat_dim)
        blocks.append({"z": np.repeat(z, steps, 0).astype(np.float32),
                       "codes": np.concatenate([one_hot, cont], 1)})
    return concat(blocks)
