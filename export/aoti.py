"""AOTInductor: the generator compiled ahead of time into a ``.pt2`` package (dynamic batch).

    report = export_pt2(variant, "g.pt2")          # torch.export + aoti_compile_and_package
    gen = Pt2Generator("g.pt2")                     # torch._inductor.aoti_load_package
    images = gen.sample(64, seed=0)                 # numpy in/out, like OnnxGenerator

Pipeline, like the ONNX path (:mod:`export.onnx_export`): the same export-ready copy of G
(:func:`prepare_generator`: BatchNorm folded, the 1x1-input ConvTranspose as a Gemm),
``torch.export`` with a dynamic batch axis, ``aoti_compile_and_package`` into a temporary
file beside the target with the gan-accel metadata (:class:`ModelMeta`, format
:data:`PT2_FORMAT`) in the package, then the package loaded back with ``aoti_load_package``
and compared with the eager generator at batch 1, 7 and 64; only a package within tolerance
is renamed onto ``path``.

A CPU package runs its kernels with the OpenMP thread count it was compiled with
(``torch.get_num_threads()`` at export, recorded as ``aoti.threads``).
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..atomic import disk_full_error, free_bytes, is_disk_full
from ..errors import DiskFullError, UserError
from .metadata import PT2_FORMAT, ModelMeta
from .onnx_export import (
    EXAMPLE_BATCH,
    FP32_TOLERANCE,
    NOTHING_WRITTEN,
    VALIDATE_BATCHES,
    ExportError,
    _first_line,
    _model_meta,
    _quiet,
    checkpoint_meta,
    image_shape_of,
    prepare_generator,
    write_model_bytes,
)
from .runtime import ModelFileError, ServedGenerator

# CUDA convolutions may run in TF32 (cuDNN's default), in eager and compiled code alike
CUDA_TOLERANCE = 1e-3


def _compile(model: torch.nn.Module, example: dict[str, torch.Tensor], props: dict[str, str],
             label: str) -> bytes:
    """The .pt2 package's bytes (packaged in memory: its size is known before it is written)."""
    batch = torch.export.Dim("batch", min=1)
    package = io.BytesIO()
    try:
        with _quiet():
            program = torch.export.export(model, (), kwargs=example,
                                          dynamic_shapes={k: {0: batch} for k in example})
            torch._inductor.aoti_compile_and_package(
                program, package_path=package,
                inductor_configs={"aot_inductor.metadata": props})
    except Exception as exc:  # torch.export / Inductor raise many types
        if is_disk_full(exc):  # Inductor's cache (its generated code, the compiled library)
            from torch._inductor.runtime.cache_dir_utils import cache_dir

            folder = Path(cache_dir())
            raise DiskFullError(folder, None, free_bytes(folder), "free space there or point "
                                "TORCHINDUCTOR_CACHE_DIR at another disk",
                                what=f"compiling into Inductor's cache {folder}") from None
        raise ExportError(f"cannot compile the {label} with AOTInductor: "
                          f"{_first_line(exc)}") from None
    return package.getvalue()


def save_pt2(package: bytes, tmp: Path, path: Path) -> None:
    """Write the package into ``tmp``, the temporary beside ``path``, and fsync it. A full disk
    removes ``tmp`` and raises DiskFullError naming ``path`` and the package's size."""
    write_model_bytes(package, tmp, path)


def validate_pt2(path: str | os.PathLike, G: torch.nn.Module, latent, tolerance: float,
                 batch_sizes: Sequence[int] = VALIDATE_BATCHES, device: str = "cpu",
                 seed: int = 0, label: str = "model") -> dict[int, float]:
    """Load the package and compare it with eager ``G`` (on ``device``) per batch size;
    ExportError above ``tolerance`` or on NaN/inf."""
    try:
        compiled = torch._inductor.aoti_load_package(str(path))
    except Exception as exc:
        raise ExportError(f"aoti_load_package cannot load the compiled {label}: "
                          f"{_first_line(exc)}") from None
    ref = copy.deepcopy(G).float().to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    errors = {}
    for b in batch_sizes:
        inputs = {k: v.to(device) for k, v in latent.sample(b, "cpu", gen).items()}
        with torch.inference_mode():
            want, got = ref(**inputs), compiled(**inputs)
        if tuple(got.shape) != tuple(want.shape):
            raise ExportError(f"{label}: .pt2 output shape {list(got.shape)} != eager "
                              f"{list(want.shape)} at batch {b}")
        if not bool(torch.isfinite(got).all()):
            raise ExportError(f"{label}: .pt2 output holds NaN/inf at batch {b}")
        diff = (got.double() - want.double()).abs()
        errors[b] = float(diff.max())
        if not errors[b] <= tolerance:
            where = np.unravel_index(int(diff.argmax()), tuple(diff.shape))
            raise ExportError(f"{label}: .pt2 output differs from eager PyTorch by "
                              f"{errors[b]:.3g} > tolerance {tolerance:g} at batch {b}, "
                              f"element {list(map(int, where))}; nothing was written")
    return errors


def export_pt2(variant_or_G, path: str | os.PathLike, *, meta: dict | None = None,
               device: str = "cpu", validate: bool = True,
               batch_sizes: Sequence[int] = VALIDATE_BATCHES, tolerance: float | None = None,
               verbose: bool = False) -> dict:
    """Compile a generator with AOTInductor into ``path`` (.pt2); validate it first.

    Args:
        variant_or_G, meta: as for :func:`export.onnx_export.export_generator`.
        device: "cpu" or "cuda[:N]": where the package's kernels run.
        validate: load the package and compare it with eager PyTorch at ``batch_sizes``.
        tolerance: max abs error (default :data:`FP32_TOLERANCE` on CPU,
            :data:`CUDA_TOLERANCE` on CUDA).
    Returns:
        report dict: path, variant, device, max_abs_err {batch: err}, tolerance, seconds,
        compile_seconds, size_bytes, threads, metadata.
    Raises:
        ExportError (a UserError) when compiling or validation fails; ``path`` is untouched.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if path.suffix != ".pt2":
        raise UserError(f"--out {path} must end in .pt2 for an AOTInductor package")
    on_cuda = str(device).startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device here; compile for cpu")
    G, latent, fields = _model_meta(variant_or_G, meta)
    tolerance = tolerance if tolerance is not None else (
        CUDA_TOLERANCE if on_cuda else FP32_TOLERANCE)
    label = f"{fields['variant']} generator"
    threads = torch.get_num_threads()
    example = latent.sample(EXAMPLE_BATCH, "cpu", torch.Generator().manual_seed(0))
    model = prepare_generator(G, example)
    model_meta = ModelMeta(**fields, dtype="float32", io_dtype="float32", exporter="aoti",
                           versions={"gan_accel": __version__, "torch": torch.__version__},
                           quantization={}, image_shape=image_shape_of(model, example, label))
    props = {**model_meta.to_props(PT2_FORMAT), "aoti.device": str(device),
             "aoti.threads": str(threads)}
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".pt2", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise ExportError(f"cannot write to {path.parent} ({exc.strerror or exc}); pass an "
                          "--out in a writable folder") from None
    tmp = Path(tmp_name)
    try:
        model = model.to(device)
        example = {k: v.to(device) for k, v in example.items()}
        t_compile = time.perf_counter()
        package = _compile(model, example, props, label)
        compile_s = time.perf_counter() - t_compile
        save_pt2(package, tmp, path)
        errors = (validate_pt2(tmp, G, latent, tolerance, batch_sizes, device, label=label)
                  if validate else {})
        os.chmod(tmp, 0o644)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if is_disk_full(exc):
                raise disk_full_error(path, len(package), NOTHING_WRITTEN, exc) from None
            raise ExportError(f"cannot write {path} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    report = {"path": str(path), "variant": fields["variant"],
              "image_shape": props["image_shape"], "device": str(device),
              "max_abs_err": errors, "tolerance": tolerance,
              "seconds": time.perf_counter() - t0, "compile_seconds": compile_s,
              "size_bytes": path.stat().st_size, "threads": threads, "metadata": props}
    if verbose:
        for b, e in errors.items():
            print(f"  batch {b:>3}: max |pt2 - eager| = {e:.2e} (tolerance {tolerance:g})")
    return report


def export_pt2_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, *,
                          best: bool = False, ema: bool | None = None, **kw) -> dict:
    """Load a run's generator (its EMA G unless ``ema=False``) and :func:`export_pt2` it."""
    from ..checkpoints import load_trained

    variant, ckpt_meta = load_trained(checkpoint, "best" if best else "last", ema, "cpu")
    return export_pt2(variant, path, meta=checkpoint_meta(ckpt_meta), **kw)


class Pt2Generator(ServedGenerator):
    """A generator package written by :func:`export_pt2`, loaded with ``aoti_load_package``.

    Same interface as :class:`export.runtime.OnnxGenerator`: numpy latents in (``run``,
    ``sample``, ``latent``), float32 numpy images out; :attr:`engine` records the choices.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f".pt2 package {self.path} does not exist; export one with "
                                 "`python -m gan_accel.export --format pt2 --checkpoint RUN_DIR "
                                 "--out FILE.pt2`")
        if not zipfile.is_zipfile(self.path):  # before torch, which logs its own warnings
            raise ModelFileError(f"{self.path} is not a loadable AOTInductor package (not a "
                                 ".pt2 zip archive)")
        try:
            self.compiled = torch._inductor.aoti_load_package(str(self.path))
        except Exception as exc:
            raise ModelFileError(f"{self.path} is not a loadable AOTInductor package "
                                 f"({_first_line(exc)})") from None
        props = dict(self.compiled.get_metadata())
        try:
            self.meta = ModelMeta.from_props(props, str(self.path), PT2_FORMAT)
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
        self.device = torch.device(props.get("aoti.device", "cpu"))
        self.input_names = self.meta.input_names
        self.engine = {"engine": "aoti", "torch": torch.__version__, "model": str(self.path),
                       "device": str(self.device), "dtype": self.meta.dtype,
                       "compiled_threads": props.get("aoti.threads"),
                       "cpu_isa": props.get("AOTI_CPU_ISA"), "dynamic_batch": True}

    def __repr__(self) -> str:
        return (f"Pt2Generator({str(self.path)!r}, variant={self.meta.variant}, "
                f"device={self.device})")

    def run_tensors(self, **inputs: torch.Tensor) -> torch.Tensor:
        """The compiled generator on torch tensors already on :attr:`device`."""
        with torch.inference_mode():
            return self.compiled(**inputs)

    def run(self, z: np.ndarray, label: np.ndarray | None = None,
            codes: np.ndarray | None = None) -> np.ndarray:
        """Generate from numpy inputs (checked like the ONNX runtime's); float32 images."""
        feeds = self.check_inputs(z, label, codes)
        out = self.run_tensors(**{k: torch.from_numpy(v).to(self.device)
                                  for k, v in feeds.items()})
        return out.float().cpu().numpy()
