"""The browser playground: an exported generator run by onnxruntime-web, in a static folder.

``gan-accel export --checkpoint RUN --web DIR`` (or ``--onnx MODEL --web DIR``) writes::

    DIR/index.html, playground.js, style.css     the page (export/web_assets/)
    DIR/model.onnx                               the generator
    DIR/model.json                               its model card (onnxruntime-web cannot read
                                                 ONNX metadata): latent layout, classes,
                                                 codes, output range, image shape
    DIR/ort.wasm.bundle.min.mjs                  onnxruntime-web's module and WebAssembly,
    DIR/ort-wasm-simd-threaded.wasm              from its npm package (nothing from a CDN)

Serve the folder over http (browsers refuse WebAssembly modules from ``file://``):
``gan-accel serve MODEL --web DIR`` or ``python -m http.server --bind 127.0.0.1 --directory
DIR``.

onnxruntime-web comes from its npm package at a pinned version, checked by the SHA-256 of
the two files the page uses. It is looked for in ``--ort-web PATH`` (the package folder, a
``node_modules`` folder, or the ``.tgz`` that ``npm pack`` writes), then in
``$GAN_ACCEL_ORT_WEB``, then in the cache (``~/.cache/gan-accel/onnxruntime-web-VERSION``);
``--fetch-ort-web`` fills the cache once with ``npm pack`` (the only download, and only when
asked).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import UserError

ORT_WEB_VERSION = "1.31.1"
ORT_WEB_PACKAGE = f"onnxruntime-web@{ORT_WEB_VERSION}"
# what the page loads, and their SHA-256 in the pinned package
ORT_WEB_FILES = {
    "ort.wasm.bundle.min.mjs":
        "51bd7168175767324ab0acfcfc4ca94a096a3826e3ebac9ccc4f195eb865f8dd",
    "ort-wasm-simd-threaded.wasm":
        "4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d",
}
ASSETS = Path(__file__).resolve().parent / "web_assets"
PAGE_FILES = ("index.html", "playground.js", "style.css")
MODEL_FILE, CARD_FILE = "model.onnx", "model.json"
WEB_FORMAT = "gan-accel-web/1"
ENV_VAR = "GAN_ACCEL_ORT_WEB"


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gan-accel" / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _folder_with_files(root: Path) -> Path | None:
    """Where the files sit under ``root``: itself, ``dist/``, ``package/dist/`` or
    ``onnxruntime-web/dist/`` (a node_modules folder)."""
    for folder in (root, root / "dist", root / "package" / "dist",
                   root / "onnxruntime-web" / "dist"):
        if all((folder / name).is_file() for name in ORT_WEB_FILES):
            return folder
    return None


def _checked(folder: Path, where: str) -> Path:
    for name, digest in ORT_WEB_FILES.items():
        if _sha256(folder / name) != digest:
            raise UserError(f"{where}: {name} is not the one onnxruntime-web "
                            f"{ORT_WEB_VERSION} ships; pass that version's package (npm pack "
                            f"{ORT_WEB_PACKAGE})")
    return folder


def _from_tarball(tgz: Path, cache: Path) -> Path:
    """Extract the page's two files from an ``npm pack`` tarball into ``cache``."""
    wanted = {f"package/dist/{name}": name for name in ORT_WEB_FILES}
    try:
        with tarfile.open(tgz, "r:gz") as tar, tempfile.TemporaryDirectory() as tmp:
            for member in tar.getmembers():
                if member.name in wanted and member.isfile():
                    src = tar.extractfile(member)
                    with open(Path(tmp) / wanted[member.name], "wb") as dst:
                        shutil.copyfileobj(src, dst)
            if _folder_with_files(Path(tmp)) is None:
                raise UserError(f"{tgz} has no package/dist/{' or '.join(ORT_WEB_FILES)}; pass "
                                f"the tarball of {ORT_WEB_PACKAGE}")
            _checked(Path(tmp), str(tgz))
            cache.mkdir(parents=True, exist_ok=True)
            for name in ORT_WEB_FILES:
                shutil.copyfile(Path(tmp) / name, cache / name)
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"cannot read {tgz} as an npm package tarball ({exc})") from None
    return cache


def find_ort_web(source: str | os.PathLike | None = None, cache: Path | None = None) -> Path:
    """The folder holding the pinned onnxruntime-web files (see the module docstring)."""
    cache = cache or default_cache()
    given = source or os.environ.get(ENV_VAR)
    if given:
        path = Path(given)
        where = f"--ort-web {path}" if source else f"${ENV_VAR}={path}"
        if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
            return _from_tarball(path, cache)
        folder = _folder_with_files(path) if path.is_dir() else None
        if folder is None:
            raise UserError(f"{where} holds no {' / '.join(ORT_WEB_FILES)}; pass the "
                            f"onnxruntime-web package folder or the .tgz of `npm pack "
                            f"{ORT_WEB_PACKAGE}`")
        return _checked(folder, where)
    if _folder_with_files(cache) is not None:
        return _checked(cache, str(cache))
    raise UserError(f"onnxruntime-web {ORT_WEB_VERSION} is not on this machine (looked in "
                    f"{cache}); fetch it once with --fetch-ort-web (runs npm pack "
                    f"{ORT_WEB_PACKAGE}), or pass --ort-web PATH to its package or tarball")


def fetch_ort_web(cache: Path | None = None) -> Path:
    """``npm pack`` the pinned package once and keep the page's two files in ``cache``."""
    cache = cache or default_cache()
    if _folder_with_files(cache) is not None:
        return _checked(cache, str(cache))
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(f"--fetch-ort-web needs npm (Node.js) to fetch {ORT_WEB_PACKAGE}; "
                        "install it, or pass --ort-web PATH to the package fetched elsewhere")
    with tempfile.TemporaryDirectory(prefix="gan-accel-ort-web-") as tmp:
        proc = subprocess.run([npm, "pack", ORT_WEB_PACKAGE, "--pack-destination", tmp,
                               "--silent"], capture_output=True, text=True, timeout=600,
                              cwd=tmp)
        tarballs = list(Path(tmp).glob("onnxruntime-web-*.tgz"))
        if proc.returncode != 0 or not tarballs:
            last = (proc.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise UserError(f"npm pack {ORT_WEB_PACKAGE} failed ({last}); check the npm "
                            "registry is reachable, or pass --ort-web PATH")
        return _from_tarball(tarballs[0], cache)


def check_out_dir(out: Path) -> None:
    """UserError unless ``out`` is a new or empty folder, or an earlier playground."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--web {out} is a file; pass a folder")
    if out.is_dir() and any(out.iterdir()):
        card = out / CARD_FILE
        try:
            ours = json.loads(card.read_text()).get("format") == WEB_FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise UserError(f"--web {out} is a folder with other files in it; pass a new or "
                            "empty folder (or an earlier playground to replace)")
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist; create it first")


def _check_single_file(model: Path) -> None:
    """The page fetches ``model.onnx`` alone: weights kept in external data files would not
    come with it."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise UserError(f"{model} keeps its weights in external data files; the page loads "
                        "one file: re-export it with `gan-accel export` (weights inside)")


def export_web(model: Path, out: Path, ort_web: Path) -> dict:
    """Write the playground for ``model`` (an exported .onnx) into ``out``; returns the model
    card written as ``model.json``."""
    from .card import describe_model

    _check_single_file(model)
    card = describe_model(model, ["CPUExecutionProvider"])
    card.update(format=WEB_FORMAT, model=MODEL_FILE, onnxruntime_web=ORT_WEB_VERSION)
    out.mkdir(exist_ok=True)
    shutil.copyfile(model, out / MODEL_FILE)
    for name in PAGE_FILES:
        shutil.copyfile(ASSETS / name, out / name)
    for name in ORT_WEB_FILES:
        shutil.copyfile(ort_web / name, out / name)
    (out / CARD_FILE).write_text(json.dumps(card, indent=1) + "\n")
    return card
