"""The data path: first-time decode of a PNG folder, the cached loader, and the training step
it has to feed (``python -m gan_accel.bench data``).

* ``first decode``: a folder of PNGs (10,000 by default, written here first: mixed RGB, RGBA,
  L and palette files of 48-128 px, some non-square, in 10 class folders) decoded into its
  cache at each resolution, with a process per core and, at 64x64 RGB, with one process;
* ``cache read``: a later run's load of the cache (the folder scanned, the cache read whole);
* ``loader``: one epoch of batches of 64 from the cache as training draws them, in memory
  (the float copy indexed, as the trainer does when the set fits) and streamed (each batch
  read from the memory-mapped cache and converted);
* ``train step``: one eager training step at batch 64 of every variant (seed's 28x28 nets on
  the embedded subset, the fastest steps the toolkit has); the loader rows say how many
  times the fastest step's images/s they deliver (target: >= 10x).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Context, Result, parse_names, time_fn

SHAPES = ((64, 3), (32, 3), (28, 1))
TARGET_RATIO = 10.0
BATCH = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data suite")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="measure this image folder (default: write a folder of PNGs first)")
    g.add_argument("--data-images", type=int, default=None, metavar="N",
                   help="PNGs in the written folder (default: 10,000; --quick: 256)")
    g.add_argument("--data-models", default=None, metavar="NAME,...",
                   help="variants whose training step is timed (default: every variant; "
                        "--quick: gan)")


# -- the folder of PNGs ------------------------------------------------------------------------
def _write_pngs(jobs: list[tuple[int, str]], seed: int) -> list[int]:
    """Write one PNG per ``(index, path)``: a smooth random picture with a disc, in a mode
    and size drawn from the index."""
    from PIL import Image

    done = []
    for i, path in jobs:
        rng = np.random.default_rng(seed * 1_000_003 + i)
        w = int(rng.integers(48, 129))
        h = w if rng.random() < 0.7 else int(rng.integers(48, 129))
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        c = rng.uniform(0, 1, (3, 3))
        img = c[0] * xx[..., None] + c[1] * yy[..., None] + c[2] * 0.5
        cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.1, 0.35)]
        img[((yy - cy) ** 2 + (xx - cx) ** 2) < r * r] = rng.uniform(0, 1, 3)
        rgb = (np.clip(img / img.max(), 0, 1) * 255).astype(np.uint8)
        kind = rng.random()
        if kind < 0.7:
            im = Image.fromarray(rgb)
        elif kind < 0.8:
            alpha = (255 * (((yy - cy) ** 2 + (xx - cx) ** 2) < 0.25)).astype(np.uint8)
            im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
        elif kind < 0.9:
            im = Image.fromarray(rgb).convert("L")
        else:
            im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
        im.save(path)
        done.append(i)
    return done


def write_png_folder(root: Path, n: int, classes: int = 10, seed: int = 0) -> float:
    """Write ``n`` PNGs into ``classes`` class folders under ``root``; returns seconds."""
    from gan_accel.data.workers import chunked, run_chunks, worker_count

    for c in range(classes):
        (root / f"class{c:02d}").mkdir(parents=True, exist_ok=True)
    jobs = [(i, str(root / f"class{i % classes:02d}" / f"{i:06d}.png")) for i in range(n)]
    t0 = time.perf_counter()
    run_chunks(_write_pngs, chunked(jobs), (seed,), worker_count(n), lambda _: None)
    return time.perf_counter() - t0


# -- measurements ------------------------------------------------------------------------------
def _row(measure: str, **kw) -> dict:
    row = {"measure": measure, "model": None, "mode": None, "resolution": None,
           "channels": None, "workers": None, "images": None, "seconds": None,
           "images_per_s": None, "cores_busy": None, "vs_fastest_step": None, "target": None,
           "status": "ok"}
    row.update(kw)
    return row


def _first_decode(root: Path, resolution: int, channels: int, workers: int | None,
                  log) -> dict:
    from gan_accel.data import FolderRequest, load_folder
    from gan_accel.data.cache import CACHE_DIRNAME, cache_name, read_manifest

    cache = root / CACHE_DIRNAME / cache_name(resolution, channels, 0.0)
    shutil.rmtree(cache, ignore_errors=True)
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    data = load_folder(root, FolderRequest(resolution, channels, 0.0), log=log, budget=None,
                       workers=workers)
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    manifest = read_manifest(cache)
    decode = manifest["decode_seconds"]
    return _row("first decode", mode=f"{manifest['workers']} process"
                + ("es" if manifest["workers"] > 1 else ""), resolution=resolution,
                channels=channels, workers=manifest["workers"], images=len(data),
                seconds=round(wall, 2), images_per_s=round(len(data) / decode, 1),
                cpu_s=round(cpu, 2), cores_busy=round(cpu / wall, 2))


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the decoding
    processes), so cpu / wall says how many cores a decode kept busy."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _cache_read(root: Path, resolution: int, channels: int) -> dict:
    from gan_accel.data import FolderRequest, load_folder

    t0 = time.perf_counter()
    data = load_folder(root, FolderRequest(resolution, channels, 0.0), log=lambda *_: None,
                       budget=None)
    seconds = time.perf_counter() - t0
    return _row("cache read", mode="whole, into memory", resolution=resolution,
                channels=channels, images=len(data), seconds=round(seconds, 3),
                images_per_s=round(len(data) / seconds, 1))


def _loader_rows(root: Path, resolution: int, channels: int, ctx: Context) -> list[dict]:
    from gan_accel.data import BatchIterator, FolderRequest, load_folder, to_model_range

    req = FolderRequest(resolution, channels, 0.0)
    memory = load_folder(root, req, log=lambda *_: None, budget=None)
    mapped = load_folder(root, req, log=lambda *_: None, budget=0)
    device = ctx.device
    y = memory.labels.to(device)
    x = to_model_range(memory.images, "symmetric").to(device)

    def stream(images):
        return to_model_range(images, "symmetric").to(device)

    loaders = {"in memory": BatchIterator(x, y, BATCH, seed=0),
               "streamed (memory-mapped)": BatchIterator(mapped.images, y, BATCH, seed=0,
                                                         transform=stream)}
    rows = []
    for mode, loader in loaders.items():
        images = loader.batches_per_epoch * BATCH

        def epoch(loader=loader):
            return [xb.shape for xb, _ in loader.epoch(0)]

        epoch()  # warm: pages in, allocator
        timing = time_fn(epoch, device, ctx.threads, ctx.budget)
        rows.append(_row("loader", mode=mode, resolution=resolution, channels=channels,
                         images=images, seconds=round(timing.p50_ms / 1e3, 4),
                         images_per_s=round(images / (timing.p50_ms / 1e3), 1),
                         p20_ms=timing.p20_ms, p50_ms=timing.p50_ms, p80_ms=timing.p80_ms))
    return rows


def _train_step_row(model: str, ctx: Context, out: str) -> dict:
    from .train_step import cycle_length, make_trainer

    trainer = make_trainer(model, "eager", BATCH, ctx.device, out)
    k = cycle_length(trainer)
    batches = list(itertools.islice(trainer.loader.epoch(0), k))

    def cycle():
        for real, labels in batches:
            trainer.train_step(real, labels)

    cycle()
    timing = time_fn(cycle, ctx.device, ctx.threads, ctx.budget)
    step_s = timing.p50_ms / k / 1e3
    return _row("train step", model=model, mode="eager", resolution=trainer.cfg.resolution,
                channels=trainer.cfg.channels, images=BATCH, seconds=round(step_s, 5),
                images_per_s=round(BATCH / step_s, 1), p20_ms=timing.p20_ms / k,
                p50_ms=timing.p50_ms / k, p80_ms=timing.p80_ms / k)


def _models(args, quick: bool) -> list[str]:
    from gan_accel.variants import VARIANTS

    default = ["gan"] if quick else list(VARIANTS)
    return parse_names(args.data_models, list(VARIANTS), default, "--data-models")


def run(args: argparse.Namespace, ctx: Context) -> Result:
    from gan_accel.data.workers import cores
    from gan_accel.errors import UserError

    log = ctx.log
    models = _models(args, ctx.quick)
    n = args.data_images or (256 if ctx.quick else 10_000)
    if n < BATCH:
        raise UserError(f"--data-images must be >= {BATCH} (one batch), got {n}")
    shapes = SHAPES[1:2] if ctx.quick else SHAPES
    rows: list[dict] = []
    notes = [f"loader rows: one epoch of batch-{BATCH} batches in the model's range on "
             f"{ctx.device} (p50 of timed epochs); vs_fastest_step = loader images/s / the "
             f"fastest training step's images/s in this run (target >= {TARGET_RATIO:g}x)",
             "first decode: Pillow decode + conversion + centre crop + Lanczos resize, written "
             "into the memory-mapped cache; images/s over the decoding time only; seconds = "
             "the whole load (folder scan, decode, cache commit, read back); cores_busy = CPU "
             "seconds of this process and its decoding processes / seconds",
             f"{cores()} cores available to the decoding processes"]
    with tempfile.TemporaryDirectory(prefix="gan-accel-bench-data-") as tmp:
        if args.data_dir:
            root = Path(args.data_dir).expanduser().resolve()
            if not root.is_dir():
                raise UserError(f"--data-dir {args.data_dir} is not a directory")
            notes.append(f"folder: {root}")
        else:
            root = Path(tmp) / "pngs"
            seconds = write_png_folder(root, n)
            size = sum(p.stat().st_size for p in root.rglob("*.png"))
            log(f"  wrote {n:,} PNGs ({size / 2**20:.0f} MiB) in {seconds:.1f} s")
            notes.append(f"folder: {n:,} PNGs written by the bench ({size / 2**20:.0f} MiB; "
                         "70% RGB, 10% RGBA, 10% L, 10% palette; 48-128 px, 30% non-square; "
                         "10 class folders)")
        for resolution, channels in shapes:
            row = _first_decode(root, resolution, channels, None, log)
            rows.append(row)
            log(f"  first decode {resolution}x{resolution}x{channels}: "
                f"{row['images_per_s']:,.0f} images/s with {row['workers']} processes")
        if not ctx.quick:
            row = _first_decode(root, *SHAPES[0], 1, log)
            rows.append(row)
            log(f"  first decode 64x64x3 in one process: {row['images_per_s']:,.0f} images/s")
        rows.append(_cache_read(root, *shapes[0]))
        for resolution, channels in shapes:
            for row in _loader_rows(root, resolution, channels, ctx):
                rows.append(row)
                log(f"  loader {row['mode']} {resolution}x{resolution}x{channels}: "
                    f"{row['images_per_s']:,.0f} images/s")
        for model in models:
            row = _train_step_row(model, ctx, f"{tmp}/run-{model}")
            rows.append(row)
            log(f"  train step {model}: {row['images_per_s']:,.0f} images/s")
    steps = [r for r in rows if r["measure"] == "train step"]
    fastest = max(steps, key=lambda r: r["images_per_s"])
    for r in rows:
        if r["measure"] == "loader":
            ratio = r["images_per_s"] / fastest["images_per_s"]
            r["vs_fastest_step"] = round(ratio, 1)
            r["target"] = f">= {TARGET_RATIO:g}x: " + ("met" if ratio >= TARGET_RATIO
                                                        else "missed")
    notes.append(f"fastest training step: {fastest['model']} at "
                 f"{fastest['images_per_s']:,.0f} images/s (batch {BATCH}, eager, "
                 f"{fastest['channels']}x{fastest['resolution']}x{fastest['resolution']})")
    config = {"images": n if not args.data_dir else None, "shapes": [list(s) for s in shapes],
              "batch": BATCH, "models": models, "device": str(ctx.device),
              "threads": ctx.threads}
    return Result("data", config, rows, notes)
