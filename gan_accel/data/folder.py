"""Image folders: labels from class subfolders, every file decoded once into a uint8 cache.

Layout (torchvision's ImageFolder convention): ``DIR/<class>/**/*.png`` gives labelled
images, one class per subfolder in sorted order; images directly in ``DIR`` (no subfolder
holding images) are an unlabelled set. Hidden files and folders (``.name``) are skipped,
files without an image extension are counted and ignored.

The first run decodes every file (:mod:`.decode`) with a process per core straight into the
cache (:mod:`.cache`); later runs read the cache as long as no file was added, removed or
modified (by path, size and modification time). When some were, only those are decoded
again. A folder whose decoded images would not fit in memory streams from the
memory-mapped cache.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..errors import DataError
from .cache import (
    CACHE_DIRNAME,
    MEMORY_PER_PIXEL,
    CacheWriter,
    cache_name,
    digest_of,
    folder_cache_roots,
    memory_budget,
    open_images,
    read_manifest,
    read_records,
    writable_root,
)
from .decode import (
    Decoded,
    channels_of_mode,
    conversion_summary,
    decode_into,
    read_mode,
)
from .images import ImageSet, MappedImages
from .workers import chunked, run_chunks, worker_count

IMAGE_EXTENSIONS = tuple(sorted(set(IMG_EXTENSIONS) | {".gif"}))
Log = Callable[[str], object]


@dataclass(frozen=True)
class SourceFile:
    rel: str  # path below the folder, "/"-separated
    size: int
    mtime_ns: int
    label: int


@dataclass
class FolderScan:
    """What a folder holds: its classes (empty: unlabelled) and image files, in order."""

    root: Path
    class_names: tuple[str, ...]
    files: list[SourceFile]
    ignored: list[str]  # files without an image extension

    @property
    def labelled(self) -> bool:
        return bool(self.class_names)

    @property
    def digest(self) -> str:
        """Changes when a file is added, removed, renamed, resized, touched or relabelled."""
        return digest_of(list(self.class_names),
                         [(f.rel, f.size, f.mtime_ns, f.label) for f in self.files])

    def path(self, f: SourceFile) -> str:
        return str(self.root / f.rel)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _walk(top: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) below ``top``, sorted, hidden entries skipped."""
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            (images if _is_image(name) else others).append(Path(dirpath) / name)
    return images, others


def scan_folder(root: Path) -> FolderScan:
    """The classes and image files of ``root``; DataError (naming the folder and the fix) for
    an empty folder, class folders that are all or partly empty, or images beside class
    folders."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot read the folder {root} ({exc.strerror or exc}); fix "
                        "--data-dir or its permissions") from None
    subdirs = [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]
    top_images = [Path(e.path) for e in entries
                  if not e.name.startswith(".") and e.is_file() and _is_image(e.name)]
    ignored = [Path(e.path) for e in entries
               if not e.name.startswith(".") and e.is_file() and not _is_image(e.name)]
    per_class = {}
    for d in subdirs:
        images, others = _walk(d)
        per_class[d.name] = images
        ignored += others
    labelled = any(per_class.values())
    kinds = ", ".join(IMAGE_EXTENSIONS)
    if not labelled and not top_images:
        if subdirs:
            raise DataError(f"the class folders of {root} ({_listing(list(per_class))}) hold no "
                            f"images ({kinds}); put each class's images in its folder")
        extra = f" (only {len(ignored)} other files)" if ignored else ""
        raise DataError(f"{root} holds no images ({kinds}){extra}; put images in it (flat, or "
                        "one subfolder per class) or fix --data-dir")
    if labelled:
        empty = [name for name, images in per_class.items() if not images]
        if empty:
            raise DataError(f"class folder {root / empty[0]} holds no images"
                            + (f" (nor {_listing(empty[1:])})" if empty[1:] else "")
                            + "; add its images or remove the folder")
        if top_images:
            raise DataError(f"{root} holds {len(top_images)} images (e.g. {top_images[0].name}) "
                            f"beside its class folders ({_listing(list(per_class))}); move "
                            "them into a class folder, or make the folder flat for unlabelled "
                            "images")
        class_names = tuple(per_class)
        files = [(p, label) for label, name in enumerate(class_names)
                 for p in per_class[name]]
    else:
        class_names = ()
        files = [(p, 0) for p in top_images]
    records = []
    for p, label in files:
        try:
            st = p.stat()
        except OSError as exc:
            raise DataError(f"cannot read {p} ({exc.strerror or exc}); fix its permissions "
                            "or remove it") from None
        records.append(SourceFile(p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns,
                                  label))
    return FolderScan(root, class_names, records, [p.relative_to(root).as_posix()
                                                   for p in ignored])


def _listing(names: list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# -- the cache of one folder -----------------------------------------------------------------
@dataclass
class FolderRequest:
    """How a folder is to be decoded."""

    resolution: int
    channels: int  # 0: from the data (1 when every file is grayscale, else 3)
    background: float


def find_cache(scan: FolderScan, name: str) -> tuple[Path, dict] | None:
    """A complete cache ``name`` of the folder's current contents, if one exists."""
    for root in folder_cache_roots(scan.root):
        manifest = read_manifest(root / name)
        if manifest is not None and manifest.get("source_digest") == scan.digest:
            return root / name, manifest
    return None


def _stale_cache(scan: FolderScan, name: str) -> tuple[Path, dict] | None:
    for root in folder_cache_roots(scan.root):
        manifest = read_manifest(root / name)
        if manifest is not None:
            return root / name, manifest
    return None


def folder_channels(scan: FolderScan, workers: int | None = None) -> int:
    """1 when every image of the folder is grayscale, else 3: from any cache of its current
    contents when there is one, else from the files' headers (no pixels decoded)."""
    for root in folder_cache_roots(scan.root):
        if not root.is_dir():
            continue
        for cache in sorted(root.iterdir()):
            manifest = read_manifest(cache)
            if manifest is not None and manifest.get("source_digest") == scan.digest:
                return int(manifest["source_channels"])
    paths = [scan.path(f) for f in scan.files]
    modes: list[str | None] = []
    run_chunks(_read_modes, chunked(paths), (), worker_count(len(paths), workers), modes.extend)
    # an unreadable file is reported by the decode that follows, naming it
    return 1 if all(channels_of_mode(m) == 1 for m in modes if m is not None) else 3


def _read_mode_or_none(path: str) -> str | None:
    try:
        return read_mode(path)
    except Exception:  # noqa: BLE001 - reported by the decode, which names the file
        return None


def _read_modes(paths: list[str]) -> list[str | None]:
    return [_read_mode_or_none(p) for p in paths]


def _decode_all(scan: FolderScan, req: FolderRequest, writer: CacheWriter, todo: list[int],
                workers: int, progress: bool) -> dict[int, Decoded]:
    """Decode the files at rows ``todo`` into the writer's images; DataError naming the
    first file that fails (and how many others did)."""
    from tqdm.auto import tqdm

    done: dict[int, Decoded | str] = {}
    bar = tqdm(total=len(todo), unit="img", desc="decoding", disable=not progress,
               dynamic_ncols=True, leave=False)

    def collect(results: list) -> None:
        done.update(results)
        bar.update(len(results))

    try:
        run_chunks(decode_into, chunked((row, scan.path(scan.files[row])) for row in todo),
                   (str(writer.images_path), req.resolution, req.channels, req.background),
                   workers, collect)
    finally:
        bar.close()
    failed = sorted(row for row, info in done.items() if isinstance(info, str))
    if failed:
        first = failed[0]
        others = f" ({len(failed) - 1} more files fail too: " + _listing(
            [scan.files[r].rel for r in failed[1:]], 3) + ")" if failed[1:] else ""
        raise DataError(f"{scan.path(scan.files[first])} {done[first]}; re-save it as PNG or "
                        f"remove it{others}")
    return done  # type: ignore[return-value]


def _record(f: SourceFile, info: Decoded) -> list:
    return [f.rel, f.size, f.mtime_ns, f.label, info.mode, info.width, info.height,
            int(info.rotated), info.frames]


def _decoded(record: list) -> Decoded:
    return Decoded(record[4], record[5], record[6], bool(record[7]), record[8])


def _changes(scan: FolderScan, old_records: list) -> str:
    old = {r[0]: (r[1], r[2], r[3]) for r in old_records}
    new = {f.rel: (f.size, f.mtime_ns, f.label) for f in scan.files}
    added = sum(k not in old for k in new)
    removed = sum(k not in new for k in old)
    modified = sum(k in old and old[k] != v for k, v in new.items())
    parts = [f"{n} {what}" for n, what in ((added, "added"), (removed, "removed"),
                                           (modified, "modified")) if n]
    return ", ".join(parts) or "the class layout changed"


def build_cache(scan: FolderScan, req: FolderRequest, log: Log, progress: bool,
                workers: int | None) -> tuple[Path, dict]:
    """Decode the folder into a new cache (re-using the rows of a stale cache whose files
    are unchanged) and return (cache folder, manifest)."""
    name = cache_name(req.resolution, req.channels, req.background)
    stale = _stale_cache(scan, name)
    reuse: dict[str, tuple[int, list]] = {}
    old_images = None
    if stale is not None:
        old_records = read_records(stale[0])
        if old_records is not None and len(old_records) == stale[1]["count"]:
            log(f"the folder changed since its cache {stale[0]} was written "
                f"({_changes(scan, old_records)}); decoding what changed")
            reuse = {r[0]: (i, r) for i, r in enumerate(old_records)}
            old_images = open_images(*stale)
    root = writable_root(folder_cache_roots(scan.root))
    writer = CacheWriter(root, name, len(scan.files), req.channels, req.resolution)
    try:
        infos: dict[int, Decoded] = {}
        todo = []
        copy_rows: list[tuple[int, int]] = []
        for row, f in enumerate(scan.files):
            old = reuse.get(f.rel)
            if old is not None and old[1][1:3] == [f.size, f.mtime_ns]:
                copy_rows.append((row, old[0]))
                infos[row] = _decoded(old[1])
            else:
                todo.append(row)
        if copy_rows:
            images = writer.images()
            new_idx = np.array([r for r, _ in copy_rows])
            old_idx = np.array([o for _, o in copy_rows])
            for i in range(0, len(new_idx), 4096):
                images[new_idx[i:i + 4096]] = old_images[old_idx[i:i + 4096]]
            images.flush()
            del images
        n = worker_count(len(todo), workers)
        t0 = time.perf_counter()
        infos.update(_decode_all(scan, req, writer, todo, n, progress))
        seconds = time.perf_counter() - t0
        decoded = [infos[row] for row in range(len(scan.files))]
        labels = np.array([f.label for f in scan.files], dtype=np.int64)
        modes = Counter(d.mode for d in decoded)
        summary = conversion_summary(decoded, req.resolution, req.channels, req.background)
        manifest = {
            "kind": "folder", "source": str(scan.root), "count": len(scan.files),
            "resolution": req.resolution, "channels": req.channels,
            "background": req.background, "class_names": list(scan.class_names),
            "class_counts": np.bincount(labels, minlength=len(scan.class_names)).tolist()
            if scan.labelled else [], "source_digest": scan.digest,
            "digest": digest_of(scan.digest, req.resolution, req.channels, req.background),
            "source_modes": dict(modes),
            "source_channels": 1 if all(channels_of_mode(m) == 1 for m in modes) else 3,
            "summary": summary, "decoded": len(todo), "reused": len(copy_rows),
            "decode_seconds": round(seconds, 3), "workers": n,
        }
        records = [_record(f, infos[row]) for row, f in enumerate(scan.files)]
        final = writer.commit(labels, records, manifest)
    except BaseException:
        writer.discard()
        raise
    rate = f", {len(todo) / seconds:,.0f} images/s" if todo and seconds > 0 else ""
    log(f"decoded {len(todo):,} images in {seconds:.1f} s with {n} process"
        f"{'es' if n > 1 else ''}{rate}"
        + (f" (re-used {len(copy_rows):,} unchanged)" if copy_rows else "")
        + f" into the cache {final}")
    return final, manifest


# -- loading ---------------------------------------------------------------------------------
def images_in_memory(images: np.ndarray, budget: int | None) -> bool:
    """Whether training may hold ``images`` (uint8) and their float32 copy in memory."""
    return budget is None or images.size * MEMORY_PER_PIXEL <= budget


def imageset_from_cache(cache_dir: Path, manifest: dict, name: str, log: Log,
                        budget: int | None, data_dir: str | None = None) -> ImageSet:
    """The ImageSet of a complete cache: in memory when it fits ``budget`` bytes (see
    :func:`images_in_memory`), else memory-mapped."""
    mapped = open_images(cache_dir, manifest)
    labels = torch.from_numpy(np.load(cache_dir / "labels.npy").astype(np.int64))
    if images_in_memory(mapped, budget):
        images: torch.Tensor | MappedImages = torch.from_numpy(np.array(mapped))
    else:
        images = MappedImages(cache_dir / "images.npy")
        need = mapped.size * MEMORY_PER_PIXEL / 2**30
        log(f"streaming from the memory-mapped cache {cache_dir / 'images.npy'}: training on "
            f"it in memory would take {need:.2f} GiB, more than the {budget / 2**30:.2f} GiB "
            "allowed (half the available memory, or GAN_ACCEL_DATA_MEMORY)")
    class_names = tuple(manifest["class_names"])
    return ImageSet(name=name, images=images, labels=labels, source=manifest["source"],
                    num_classes=len(class_names), class_names=class_names,
                    background=float(manifest["background"]), cache_dir=cache_dir,
                    digest=manifest["digest"], data_dir=data_dir)


def _describe(manifest: dict) -> str:
    r, c = manifest["resolution"], manifest["channels"]
    kind = "RGB" if c == 3 else "grayscale"
    classes = manifest["class_names"]
    labels = (f"{len(classes)} class{'es' if len(classes) > 1 else ''}" if classes
              else "unlabelled")
    return f"{manifest['count']:,} images, {r}x{r} {kind}, {labels}"


def load_prepared_cache(cache_dir: Path, manifest: dict, req: FolderRequest, log: Log,
                        budget: int | None) -> ImageSet:
    """A cache given directly as the data folder: used as it is when its parameters are the
    run's, a DataError naming the fix otherwise (its source images are not there to decode
    again)."""
    want = {"resolution": req.resolution, "channels": req.channels or manifest["channels"],
            "background": req.background}
    for key, flag in (("resolution", "--resolution"), ("channels", "--channels"),
                      ("background", "--background")):
        if manifest[key] != want[key]:
            raise DataError(
                f"{cache_dir} is a prepared cache of {_describe(manifest)} decoded with "
                f"{flag} {manifest[key]:g}, not {want[key]:g}; pass {flag} "
                f"{manifest[key]:g}, or pass its source folder {manifest['source']} as "
                "--data-dir to decode it anew")
    log(f"using the prepared cache {cache_dir} ({_describe(manifest)}; made from "
        f"{manifest['source']}, not checked against it): {manifest['summary']}")
    return imageset_from_cache(cache_dir, manifest, "folder", log, budget, str(cache_dir))


def prepared_caches(folder: Path) -> list[tuple[Path, dict]]:
    """The caches ``folder`` is (itself) or holds (a ``.gan-accel`` folder)."""
    own = read_manifest(folder)
    if own is not None:
        return [(folder, own)]
    if folder.name != CACHE_DIRNAME:
        return []
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        manifest = read_manifest(sub)
        if manifest is not None:
            found.append((sub, manifest))
    return found


def load_folder(data_dir: str | os.PathLike, req: FolderRequest, *, log: Log = print,
                progress: bool = False, budget: int | None | str = "auto",
                workers: int | None = None) -> ImageSet:
    """Load an image folder at ``req``'s resolution, channels and background, through its
    cache (decoding the files first when there is none for the folder's current contents).

    Args:
        data_dir: the folder (class subfolders or flat), or a prepared cache folder.
        req: the decoding parameters (``channels`` 0: from the data).
        log: where the one-line notices go.
        progress: show a progress bar while decoding.
        budget: bytes the set may take in memory for training ("auto": half the available
            memory or ``$GAN_ACCEL_DATA_MEMORY``; None: no limit); larger sets stream from
            the memory-mapped cache.
        workers: decoding processes (None: one per core for large folders).

    Raises:
        DataError: for a missing or empty folder, empty classes, an unreadable or truncated
            image, or a prepared cache of other parameters (each names the file and the fix).
    """
    folder = Path(data_dir).expanduser().resolve()
    if not folder.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a directory; fix the path to the image "
                        "folder")
    if budget == "auto":
        budget = memory_budget()
    prepared = prepared_caches(folder)
    if prepared:
        match = [p for p in prepared
                 if p[1]["resolution"] == req.resolution and p[1]["background"] ==
                 req.background and req.channels in (0, p[1]["channels"])]
        cache_dir, manifest = (match or prepared)[0]
        return load_prepared_cache(cache_dir, manifest, req, log, budget)
    scan = scan_folder(folder)
    if scan.ignored:
        n = len(scan.ignored)
        log(f"{folder}: ignored {n:,} file{'s' if n > 1 else ''} without an image extension "
            f"(e.g. {scan.ignored[0]})")
    if not req.channels:
        req = FolderRequest(req.resolution, folder_channels(scan, workers), req.background)
    name = cache_name(req.resolution, req.channels, req.background)
    found = find_cache(scan, name)
    if found is None:
        found = build_cache(scan, req, log, progress, workers)
    else:
        log(f"read the cache {found[0]} of {folder}")
    cache_dir, manifest = found
    log(f"{folder}: {_describe(manifest)}; {manifest['summary']}")
    return imageset_from_cache(cache_dir, manifest, "folder", log, budget, str(folder))
