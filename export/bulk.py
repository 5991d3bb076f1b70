"""Bulk sampling: millions of images from a served generator, streamed into shard files.

    plan = BulkPlan(n=1_000_000, seed=0, shard_size=10_000, batch=4096)
    todo = prepare_out_dir(out, plan, identity)        # resume: the shards still missing
    summary = write_shards(gen, out, plan, todo)        # OnnxGenerator, Pt2Generator, ...

Contract:

* **Deterministic**: image ``i`` comes from a latent that depends only on the seed and
  ``i``: latents are drawn in fixed blocks of :data:`LATENT_BLOCK` images, block ``j`` from
  ``numpy.random.default_rng([seed, j])``. The generator runs on batches aligned to
  multiples of ``batch`` from image 0, so neither the shard size nor a resume changes what
  the engine computes: the same seed, engine and batch give the same bytes whatever the
  shard size.
* **Resumable**: a shard is written to a hidden temporary name and renamed when complete,
  so a killed run leaves either a whole shard or none under the final name; a rerun with
  the same options skips the finished shards (``bulk.json`` in the folder records the
  options; a folder holding another run's shards is refused).
* **Flat memory**: at most three engine batches (computing, queued) and one shard are in
  memory, whatever ``n``; a second thread converts finished batches to uint8 and writes the
  shards while the engine computes the next batch.

Shards: ``shard-000000.npz`` with ``images`` uint8, ``start`` (the global index of its first
image), ``labels`` int64 [N] (cGAN class / InfoGAN categorical code) and ``codes`` float32
[N, code_dim] (InfoGAN) where the model has them; or ``shard-000000/`` folders of
``<index>.png`` files (plus ``labels.csv``). The pixel layout is the one Pillow, PNG and the
HTTP server's ``.npz`` use: ``[N, H, W]`` for a grey (1-channel) model, as every shard written
before colour models had, and channels last, ``[N, H, W, 3]``, for a colour one (its PNGs are
RGB). The shape comes from the model (:attr:`ServedGenerator.image_shape`) and is recorded
in ``bulk.json``. Needs only numpy (and Pillow for PNG): torch-free like
:mod:`export.runtime`.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import os
import queue
import resource
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import (
    atomic_write_bytes,
    atomic_write_text,
    check_free_space,
    disk_full_error,
    fsync_dir,
    is_disk_full,
    write_bytes_to,
)
from ..errors import DiskFullError, UserError
from ..latent import LatentSpec
from ..ranges import OutputRange

FORMAT = "gan-accel-bulk/1"
MANIFEST = "bulk.json"
LATENT_BLOCK = 1024  # images per latent draw: part of the determinism contract
IDENTITY = ("format", "n", "seed", "shard_size", "shard_format", "batch", "label",
            "latent_block", "model_sha256", "engine_kind")


class ShardFormat(str, enum.Enum):
    NPZ = "npz"  # one uncompressed .npz per shard (images uint8, labels, codes)
    PNG = "png"  # one folder of PNG files per shard


class BulkError(UserError):
    """The output folder cannot take this run (another run's shards, not a folder, ...)."""


@dataclass(frozen=True)
class BulkPlan:
    """How ``n`` images are cut: shards of ``shard_size``, engine batches of ``batch``."""

    n: int
    seed: int = 0
    shard_size: int = 10_000
    batch: int = 4096
    shard_format: str = ShardFormat.NPZ.value
    label: int | None = None  # fix every image's class (conditional models)

    def __post_init__(self):
        for name in ("n", "shard_size", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        ShardFormat(self.shard_format)

    @property
    def shards(self) -> int:
        return -(-self.n // self.shard_size)

    def bounds(self, k: int) -> tuple[int, int]:
        """Global image indices ``[start, stop)`` of shard ``k``."""
        return k * self.shard_size, min((k + 1) * self.shard_size, self.n)

    def name(self, k: int) -> str:
        return f"shard-{k:06d}" + (".npz" if self.shard_format == ShardFormat.NPZ else "")


# ---------------------------------------------------------------------------------------------
# latents and pixels
# ---------------------------------------------------------------------------------------------
def latents(spec: LatentSpec, seed: int, start: int, stop: int,
            label: int | None = None) -> dict[str, np.ndarray]:
    """The latent inputs of images ``[start, stop)``: a function of ``seed`` and the image
    index only (fixed blocks of :data:`LATENT_BLOCK`, block ``j`` from rng ``[seed, j]``)."""
    first, last = start // LATENT_BLOCK, (stop - 1) // LATENT_BLOCK
    fixed = None if label is None else np.full(LATENT_BLOCK, label, dtype=np.int64)
    blocks = [spec.sample_numpy(LATENT_BLOCK, np.random.default_rng([seed, j]), fixed)
              for j in range(first, last + 1)]
    lo = start - first * LATENT_BLOCK
    return {k: np.concatenate([b[k] for b in blocks])[lo:lo + stop - start] for k in blocks[0]}


def pixel_shape(image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The stored shape of one image of ``image_shape`` ``(C, H, W)``: ``(H, W)`` for one
    channel, ``(H, W, C)`` (channels last) for colour."""
    c, h, w = image_shape
    return (h, w) if c == 1 else (h, w, c)


def to_uint8(images: np.ndarray, output_range: str) -> np.ndarray:
    """Float images [B, C, H, W] in ``output_range`` -> uint8 [B, H, W] (one channel) or
    [B, H, W, C]: ``floor(255 u + 0.5)`` of the [0, 1] pixels ``u`` (as PNG grids quantise
    them), in three float32 passes (the truncating cast is the floor: the values are clipped
    to [0, 255] first)."""
    lo, hi = OutputRange(output_range).bounds
    scale = np.float32(255.0 / (hi - lo))
    b, c, h, w = images.shape
    buf = np.empty((b, *pixel_shape((c, h, w))), np.float32)  # C-contiguous, channels last
    np.multiply(images[:, 0] if c == 1 else images.transpose(0, 2, 3, 1), scale, out=buf,
                dtype=np.float32)
    buf += np.float32(0.5 - lo * scale)
    np.clip(buf, 0.0, 255.0, out=buf)
    return buf.astype(np.uint8)


def side_arrays(spec: LatentSpec, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a shard stores beside the images: ``labels`` and InfoGAN's ``codes``."""
    out = {}
    if "label" in feeds:
        out["labels"] = feeds["label"].astype(np.int64)
    if "codes" in feeds:
        out["codes"] = feeds["codes"].astype(np.float32)
        if spec.cat_dim:
            out["labels"] = feeds["codes"][:, :spec.cat_dim].argmax(1).astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------------
# the output folder
# ---------------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def identity(plan: BulkPlan, model_sha256: str, engine_kind: str) -> dict:
    """The facts two runs must share for one to resume the other's shards."""
    return {"format": FORMAT, **asdict(plan), "latent_block": LATENT_BLOCK,
            "model_sha256": model_sha256, "engine_kind": engine_kind}


def prepare_out_dir(out: Path, plan: BulkPlan, ident: dict) -> list[int]:
    """Create or check ``out``; returns the shard indices still to write.

    A folder with another run's ``bulk.json`` (a different seed, n, shard size, model,
    ...) raises BulkError naming the difference; stale temporary shards are removed.
    """
    if out.exists() and not out.is_dir():
        raise BulkError(f"--out {out} is a file; bulk sampling writes a folder of shards "
                        "(pass a folder, or an --out ending in .png for one grid)")
    if not out.exists():
        if not out.parent.is_dir():
            raise BulkError(f"folder {out.parent} does not exist; create it first")
        out.mkdir()
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BulkError(f"{manifest} is unreadable ({exc}); remove it to start over") \
                from None
        diff = [k for k in IDENTITY if old.get(k) != ident.get(k)]
        if diff:
            k = diff[0]
            raise BulkError(f"{out} holds shards of another run ({k} {old.get(k)!r} there, "
                            f"{ident.get(k)!r} now); pass another --out, or the same options "
                            "to resume it")
    elif any(p.name.startswith("shard-") for p in out.iterdir()):
        raise BulkError(f"{out} holds shards but no {MANIFEST}; pass an empty or new folder")
    for stale in out.glob(".shard-*.tmp"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return [k for k in range(plan.shards) if not (out / plan.name(k)).exists()]


def _write_manifest(out: Path, plan: BulkPlan, doc: dict) -> None:
    try:
        atomic_write_text(out / MANIFEST, json.dumps(doc, indent=1) + "\n")
    except DiskFullError as exc:
        raise exc.with_hint(_resume_hint(out, plan)) from None


def _resume_hint(out: Path, plan: BulkPlan) -> str:
    done = sum((out / plan.name(k)).exists() for k in range(plan.shards))
    return (f"{done} of {plan.shards} shards are complete in {out}; free disk space, then run "
            "the same command again to write the rest")


def write_shard(out: Path, plan: BulkPlan, k: int, arrays: dict[str, np.ndarray]) -> Path:
    """Write shard ``k`` under a temporary name, then rename it into place (atomic).

    A full disk leaves no part of the shard behind and raises DiskFullError naming the shard,
    the bytes it needs and how many shards are complete (a rerun resumes after them).
    """
    final = out / plan.name(k)
    if plan.shard_format == ShardFormat.NPZ:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        try:
            atomic_write_bytes(final, buf.getbuffer())
        except DiskFullError as exc:
            raise exc.with_hint(_resume_hint(out, plan)) from None
        return final
    tmp = out / f".{plan.name(k)}.tmp"
    files = _png_files(arrays)
    try:
        tmp.mkdir()
        for name, data in files.items():
            write_bytes_to(tmp / name, data)
        os.replace(tmp, final)
        fsync_dir(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            needed = sum(len(data) for data in files.values())
            raise disk_full_error(final, needed, _resume_hint(out, plan), exc) from None
        raise
    return final


def _png_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """A PNG shard's files, encoded in memory: ``<index>.png`` per image, ``labels.csv``."""
    from PIL import Image

    files = {}
    start = int(arrays["start"])
    for i, image in enumerate(arrays["images"]):
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="png", compress_level=1)
        files[f"{start + i:09d}.png"] = png.getvalue()
    if "labels" in arrays:
        rows = [f"{start + i:09d}.png,{int(y)}" for i, y in enumerate(arrays["labels"])]
        files["labels.csv"] = ("file,label\n" + "\n".join(rows) + "\n").encode()
    return files


def check_space(out: Path, plan: BulkPlan, todo: list[int], image_bytes: int) -> None:
    """DiskFullError before the work when ``out``'s disk cannot hold the NPZ shards still to
    write: ``image_bytes`` (one image's uint8 pixels, its label and codes) per image is what
    an uncompressed shard stores at least. PNG sizes depend on the images: no check."""
    if plan.shard_format != ShardFormat.NPZ:
        return
    images = sum(b - a for a, b in map(plan.bounds, todo))
    check_free_space(out, images * image_bytes, f"sampling {images:,} images into {out}",
                     "free disk space or pass another --out")


def read_shards(out: Path) -> dict[str, np.ndarray]:
    """Every .npz shard of ``out`` concatenated in index order (for checks and small runs)."""
    parts = [np.load(p) for p in sorted(out.glob("shard-*.npz"))]
    keys = [k for k in parts[0].files if k != "start"] if parts else []
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
class _Assembler:
    """The second stage: a thread that turns finished engine batches into shards (uint8
    conversion, labels, the atomic write) while the engine computes the next batch."""

    def __init__(self, out: Path, plan: BulkPlan, todo: list[int], spec: LatentSpec,
                 output_range: str, image_shape: tuple[int, int, int], on_shard):
        self.out, self.plan, self.todo, self.spec = out, plan, todo, spec
        self.output_range, self.on_shard = output_range, on_shard
        self.image_shape, self.pixels = tuple(image_shape), pixel_shape(image_shape)
        self.queue: queue.Queue = queue.Queue(maxsize=2)  # engine batches in flight
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bulk-shards", daemon=True)
        self.thread.start()

    def put(self, j: int, images: np.ndarray, feeds: dict) -> None:
        """Hand over engine batch ``j`` (float images and its latents); raises the stage's
        error, if it failed, instead of blocking on a queue nobody empties."""
        while True:
            self._check()
            try:
                self.queue.put((j, images, feeds), timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for the last shard; re-raise the stage's error."""
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self.thread.join()
        self._check()

    def abort(self) -> None:
        """Stop the stage after a failure elsewhere; its finished shards stay on disk."""
        if self.error is None:
            self.error = EOFError("aborted")
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self.thread.join()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _next(self):
        item = self.queue.get()
        if item is None:
            raise EOFError("the engine stopped before the last shard")
        j, images, feeds = item
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"the engine returned images {list(images.shape[1:])}; the "
                             f"model's image shape is {list(self.image_shape)}")
        return j, to_uint8(images, self.output_range), side_arrays(self.spec, feeds)

    def _run(self) -> None:
        plan, batch = self.plan, None
        try:
            for k in self.todo:
                start, stop = plan.bounds(k)
                images = np.empty((stop - start, *self.pixels), np.uint8)
                side: dict[str, np.ndarray] = {}
                for j in range(start // plan.batch, (stop - 1) // plan.batch + 1):
                    while batch is None or batch[0] < j:  # batches arrive in order
                        batch = self._next()
                    lo, hi = j * plan.batch, min((j + 1) * plan.batch, plan.n)
                    a, b = max(start, lo), min(stop, hi)
                    images[a - start:b - start] = batch[1][a - lo:b - lo]
                    for name, values in batch[2].items():
                        if name not in side:
                            side[name] = np.empty((stop - start, *values.shape[1:]),
                                                  values.dtype)
                        side[name][a - start:b - start] = values[a - lo:b - lo]
                write_shard(self.out, plan, k, {"images": images, "start": np.int64(start),
                                                **side})
                self.on_shard(stop - start)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
            while True:  # unblock the engine thread, which checks self.error
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break


def _image_bytes(spec: LatentSpec, images: np.ndarray, feeds: dict[str, np.ndarray],
                 output_range: str) -> int:
    """What one image adds to a shard's arrays: its uint8 pixels, label and codes."""
    one = {k: v[:1] for k, v in feeds.items()}
    return (to_uint8(images[:1], output_range).nbytes
            + sum(v.nbytes for v in side_arrays(spec, one).values()))


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (MB): Linux's VmHWM, which starts afresh
    at exec (``ru_maxrss`` keeps the peak of the parent a subprocess was forked from)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_shards(gen, out: Path, plan: BulkPlan, todo: list[int], ident: dict, *,
                 engine: dict | None = None, model: dict | None = None,
                 progress: bool = True) -> dict:
    """Generate the images of shards ``todo`` with ``gen`` (a served generator: ``meta``,
    ``run(**feeds)``) and write them into ``out``; returns the run's summary (also saved
    in ``bulk.json``): images generated, seconds, images_per_s, engine_seconds (inside
    ``gen.run``) and engine_share (of the wall time: 1 - the pipeline's own cost),
    peak_rss_mb."""
    from tqdm import tqdm

    spec, output_range, image_shape = gen.meta.latent, gen.meta.output_range, gen.image_shape
    doc = {**ident, "shards": plan.shards, "status": "running",
           "image_shape": list(image_shape), "pixels": list(pixel_shape(image_shape)),
           "model": model or {}, "engine": engine or getattr(gen, "engine", {})}
    _write_manifest(out, plan, doc)
    todo_images = sum(b - a for a, b in map(plan.bounds, todo))
    batches = sorted({j for k in todo for j in range(plan.bounds(k)[0] // plan.batch,
                                                     (plan.bounds(k)[1] - 1) // plan.batch + 1)})
    bar = tqdm(total=plan.n, initial=plan.n - todo_images, unit="img", unit_scale=True,
               disable=not progress, desc=f"sampling into {out.name}", smoothing=0.1)
    stage = _Assembler(out, plan, todo, spec, output_range, image_shape, bar.update)
    t0 = time.perf_counter()
    engine_s = 0.0  # wall time inside gen.run: the rest is the pipeline's own cost
    try:
        for j in batches:  # the engine: each needed batch once, in order
            lo, hi = j * plan.batch, min((j + 1) * plan.batch, plan.n)
            feeds = latents(spec, plan.seed, lo, hi, plan.label)
            t_run = time.perf_counter()
            images = gen.run(**feeds)
            engine_s += time.perf_counter() - t_run
            if j == batches[0]:  # the first batch shows what one image takes on disk
                check_space(out, plan, todo, _image_bytes(spec, images, feeds, output_range))
            stage.put(j, images, feeds)
        stage.close()
    except BaseException:
        stage.abort()  # the engine's own error (or an interrupt) is the one to report
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    summary = {"generated": todo_images, "resumed_shards": plan.shards - len(todo),
               "seconds": round(seconds, 3),
               "images_per_s": round(todo_images / seconds, 1) if seconds > 0 else None,
               "engine_seconds": round(engine_s, 3),
               "engine_share": round(engine_s / seconds, 3) if seconds > 0 else None,
               "peak_rss_mb": round(peak_rss_mb(), 1)}
    _write_manifest(out, plan, {**doc, "status": "complete", **summary})
    return summary
