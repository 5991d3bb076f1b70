"""Export a generator to ONNX: fold BatchNorm, rewrite for onnxruntime, export, validate.

Pipeline (on a CPU deep copy; the caller's model is never touched):

1. :func:`prepare_generator`: eval mode, spectral-norm style parametrizations baked in,
   every eval-mode BatchNorm folded into the conv/linear before it (or, alone, turned into a
   per-channel scale and shift), in-place activations made out-of-place (an in-place op on a
   view exports as ScatterND), and a ConvTranspose2d applied to a 1x1 input (DCGAN's first
   layer) rewritten as Linear + reshape: onnxruntime runs that as one Gemm over the batch,
   where its ConvTranspose loops over images (~10% of the DCGAN G's time). Rewriting the
   other ConvTransposes as sub-pixel Conv + DepthToSpace (or MatMul + Col2Im) was measured
   too and was slower or no faster: onnxruntime's DepthToSpace costs more than it saves.
2. ``torch.onnx.export(dynamo=True)`` with a dynamic batch axis named ``batch``; if that
   exporter fails, the TorchScript exporter, said on stderr and in the report.
3. Metadata (:class:`export.metadata.ModelMeta`) into ``metadata_props``, with the image
   shape ``[C, H, W]`` the generator produces (1 or 3 channels, any side: 28, 32, 64 px).
4. Validation on a temporary file next to the target: ``onnx.checker``, then onnxruntime
   (CPU, the runtime's default options) against the eager fp32 generator at batch 1, 7 and 64;
   only a model within tolerance is renamed onto ``path``.

fp16 (``fp16=True``): weights and activations in float16 inside the graph, with casts at the
edges, so inputs and ``image`` stay float32 and callers need not change. On CPU onnxruntime
computes most fp16 ops through inserted casts (it has few fp16 CPU kernels): fp16 is for
CUDA, where it halves the weights' bytes. The tolerance is :data:`FP16_TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .. import __version__
from ..atomic import disk_full_error, is_disk_full, write_bytes_to
from ..checkpoints import load_trained
from ..errors import UserError
from ..latent import LATENT_FIELDS, LatentSpec
from ..ranges import OutputRange
from ..variants import Variant
from .conv_form import ConvTransposeAsLinear, to_conv_form
from .metadata import OUTPUT_NAME, ModelMeta, check_image_shape, format_image_shape

DEFAULT_OPSET = 18  # the dynamo exporter's native floor: widest runtime support (ORT >= 1.14)
MIN_OPSET = 18  # lower opsets need onnx's version converter, which can fail or be skipped
EXAMPLE_BATCH = 2  # the export example; >= 2 so the batch axis cannot specialise to 1
VALIDATE_BATCHES = (1, 7, 64)
FP32_TOLERANCE = 1e-5  # max |ORT - eager|; measured <= 3e-7 untrained, 1.1e-6 trained MLP G
# fp16 (float16 weights + activations, fp32 I/O) vs the eager fp32 generator, max |err| over
# 1024 images: DCGAN trained 390 steps 2.3e-3 (its EMA G 7e-4), MLP GAN 7.8e-4 on [-1, 1],
# untrained nets 2e-5..4e-4; eager torch fp16 errs as much (2.1e-3, 1.7e-3). 1e-2 on [0, 1]
# is ~4x the worst measured (~2.5 grey levels of an 8-bit PNG); doubled for [-1, 1].
FP16_TOLERANCE = {"unit": 1e-2, "symmetric": 2e-2}


class ExportError(UserError):
    """The export or its validation failed; nothing was written."""


NOTHING_WRITTEN = "nothing was written; free disk space or pass an --out on another disk"


# ---------------------------------------------------------------------------------------------
# torch-side graph preparation
# ---------------------------------------------------------------------------------------------
class ChannelAffine(nn.Module):
    """Eval-mode BatchNorm as ``x * scale + shift`` per channel (dim 1); any rank >= 2."""

    def __init__(self, bn: _BatchNorm):
        super().__init__()
        inv = torch.rsqrt(bn.running_var + bn.eps)
        weight = bn.weight if bn.weight is not None else torch.ones_like(inv)
        bias = bn.bias if bn.bias is not None else torch.zeros_like(inv)
        self.register_buffer("scale", (weight * inv).detach().clone())
        self.register_buffer("shift", (bias - bn.running_mean * weight * inv).detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


def _set_child(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, new)


def _bake_parametrizations(model: nn.Module) -> None:
    for m in list(model.modules()):
        if parametrize.is_parametrized(m):
            for name in list(m.parametrizations):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold eval-mode BatchNorms into the preceding Conv/ConvTranspose/Linear of their
    ``nn.Sequential`` (in place); a BN with nothing to fold into becomes a
    :class:`ChannelAffine`. Returns the number folded into a layer."""
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            layer, bn = seq[i], seq[i + 1]
            if not isinstance(bn, _BatchNorm) or bn.running_mean is None:
                continue
            if isinstance(layer, nn.ConvTranspose2d | nn.Conv2d):
                seq[i] = fuse_conv_bn_eval(layer, bn,
                                           transpose=isinstance(layer, nn.ConvTranspose2d))
            elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
                seq[i] = fuse_linear_bn_eval(layer, bn)
            else:
                continue
            seq[i + 1] = nn.Identity()
            folded += 1
    for name, m in list(model.named_modules()):
        if isinstance(m, _BatchNorm) and m.running_mean is not None:
            _set_child(model, name, ChannelAffine(m))
    return folded


def _conv_transpose_input_sizes(model: nn.Module, example: dict) -> dict[str, tuple]:
    """The spatial size each ConvTranspose2d sees on ``example`` (fixed: only B is dynamic)."""
    sizes: dict[str, tuple] = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[2:])))
        for name, m in model.named_modules() if isinstance(m, nn.ConvTranspose2d)]
    try:
        with torch.no_grad():
            model(**example)
    finally:
        for h in hooks:
            h.remove()
    return sizes


def prepare_generator(G: nn.Module, example: dict[str, torch.Tensor], *,
                      conv_form: bool = False) -> nn.Module:
    """An export-ready fp32 CPU copy of ``G`` (see the module docstring, step 1).

    ``conv_form``: also rewrite the remaining ConvTranspose2d layers as Conv2d + pixel
    shuffle (:mod:`export.conv_form`), the form int8 kernels exist for; slower in fp32.
    """
    model = copy.deepcopy(G).float().cpu().eval()
    _bake_parametrizations(model)
    fold_batchnorm(model)
    for name, size in _conv_transpose_input_sizes(model, example).items():
        ct = model.get_submodule(name)
        if (size == (1, 1) and ct.groups == 1 and ct.dilation == (1, 1)
                and ct.output_padding == (0, 0) and ct.padding_mode == "zeros"):
            _set_child(model, name, ConvTransposeAsLinear(ct))
    for m in model.modules():
        if getattr(m, "inplace", None) is True:
            m.inplace = False
    if conv_form:
        to_conv_form(model)
    return model.eval()


class HalfPrecision(nn.Module):
    """Run ``G`` in float16 with float32 in/out: casts at the graph's edges."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G.half()

    def forward(self, **latent: torch.Tensor) -> torch.Tensor:
        latent = {k: v.half() if v.is_floating_point() else v for k, v in latent.items()}
        return self.G(**latent).float()


class _Positional(nn.Module):
    """``forward(*inputs)`` in ``names`` order, for the TorchScript exporter."""

    def __init__(self, G: nn.Module, names: Sequence[str]):
        super().__init__()
        self.G, self.names = G, list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.G(**dict(zip(self.names, inputs, strict=True)))


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
def check_opset(opset: int) -> int:
    """``opset`` if this exporter can write it, else UserError naming the valid range."""
    top = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= top:
        raise UserError(f"opset {opset!r} is not supported; choose {MIN_OPSET}..{top} "
                        f"(default {DEFAULT_OPSET})")
    return opset


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if line.strip() and not line.startswith("Traceback"):
            return line.strip()[:300]
    return type(exc).__name__


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints and warnings; errors still raise."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _to_onnx(model: nn.Module, example: dict[str, torch.Tensor], opset: int,
             label: str) -> tuple[onnx.ModelProto, str]:
    """(ModelProto, exporter name): dynamo first, TorchScript if dynamo fails (said loudly)."""
    names = list(example)
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet():
            program = torch.onnx.export(
                model, (), kwargs=example, input_names=names, output_names=[OUTPUT_NAME],
                dynamo=True, dynamic_shapes={k: {0: batch} for k in names},
                opset_version=opset, optimize=True, verify=False)
        return program.model_proto, "dynamo"
    except Exception as exc:  # the exporter raises many types
        dynamo_error = _first_line(exc)
    print(f"note: the dynamo ONNX exporter failed for {label} ({dynamo_error}); "
          "using the TorchScript exporter", file=sys.stderr)
    buf = io.BytesIO()
    try:
        with _quiet():
            torch.onnx.export(
                _Positional(model, names).eval(), tuple(example.values()), buf, dynamo=False,
                input_names=names, output_names=[OUTPUT_NAME], opset_version=opset,
                dynamic_axes={k: {0: "batch"} for k in [*names, OUTPUT_NAME]})
    except Exception as exc:
        raise ExportError(f"cannot export {label} to ONNX: dynamo: {dynamo_error}; "
                          f"TorchScript: {_first_line(exc)}") from None
    return onnx.load_from_string(buf.getvalue()), "torchscript"


def _model_meta(G_or_variant, meta: dict | None) -> tuple[nn.Module, LatentSpec, dict]:
    """(G, latent spec, ModelMeta fields) from a Variant or a bare G plus ``meta``."""
    meta = dict(meta or {})
    if isinstance(G_or_variant, Variant):
        v = G_or_variant
        G, latent = v.G, v.latent
        fields = {"variant": v.name, "output_range": OutputRange(v.output_range).value}
    elif isinstance(G_or_variant, nn.Module):
        G = G_or_variant
        latent = meta.pop("latent", None)
        if isinstance(latent, dict):
            latent = LatentSpec.from_meta(latent)
        if not isinstance(latent, LatentSpec):
            raise TypeError("exporting a bare generator needs meta={'latent': LatentSpec or "
                            "its to_meta() dict, 'variant': name, 'output_range': ...}")
        fields = {"variant": meta.pop("variant", type(G).__name__),
                  "output_range": OutputRange(meta.pop("output_range", getattr(
                      G, "output_range", OutputRange.UNIT))).value}
    else:
        raise TypeError(f"expected a Variant or an nn.Module, got {type(G_or_variant).__name__}")
    unknown = set(meta) - {"step", "source", "ema"}
    if unknown:
        raise TypeError(f"unknown meta keys {sorted(unknown)}; expected step, source, ema")
    lat = {k: getattr(latent, k) for k in LATENT_FIELDS}
    return G, latent, {**fields, **lat, **meta}


def image_shape_of(model: nn.Module, example: dict[str, torch.Tensor],
                   label: str) -> tuple[int, int, int]:
    """The ``(C, H, W)`` of the images the export-ready ``model`` (eval mode, CPU) makes from
    ``example``; ExportError unless it is [B, C, H, W] with 1 or 3 channels."""
    with torch.no_grad():
        out = model(**example)
    shape = tuple(int(s) for s in out.shape[1:])
    try:
        if out.dim() != 4:
            raise ValueError(f"{label}: output {list(out.shape)} is not [batch, C, H, W]")
        return check_image_shape(shape, label)
    except ValueError as exc:
        raise ExportError(f"cannot export: {exc}") from None


def _count_ops(model: onnx.ModelProto, op_type: str) -> int:
    return sum(n.op_type == op_type for n in model.graph.node)


def validate_onnx(path: str | os.PathLike, G: nn.Module, latent: LatentSpec, tolerance: float,
                  batch_sizes: Sequence[int] = VALIDATE_BATCHES, seed: int = 0,
                  label: str = "model") -> dict[int, float]:
    """``onnx.checker`` then max |ORT - eager G| per batch size; ExportError above
    ``tolerance`` or on NaN/inf. ``G`` is the fp32 reference (run on a CPU copy)."""
    from .runtime import CPU, session_options

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ExportError(f"the exported {label} fails onnx.checker: {_first_line(exc)}") from None
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), session_options(), providers=[CPU])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load the exported {label}: "
                          f"{_first_line(exc)}") from None
    ref = copy.deepcopy(G).float().cpu().eval()
    gen = torch.Generator().manual_seed(seed)
    errors = {}
    for b in batch_sizes:
        inputs = latent.sample(b, "cpu", gen)
        with torch.no_grad():
            want = ref(**inputs).numpy()
        got = session.run([OUTPUT_NAME], {k: v.numpy() for k, v in inputs.items()})[0]
        if got.shape != want.shape:
            raise ExportError(f"{label}: ONNX output shape {list(got.shape)} != eager "
                              f"{list(want.shape)} at batch {b}")
        if not np.isfinite(got).all():
            raise ExportError(f"{label}: ONNX output holds NaN/inf at batch {b} "
                              f"(eager finite: {bool(np.isfinite(want).all())})")
        diff = np.abs(got.astype(np.float64) - want)
        errors[b] = float(diff.max())
        if not errors[b] <= tolerance:
            where = np.unravel_index(int(diff.argmax()), diff.shape)
            raise ExportError(f"{label}: ONNX output differs from eager PyTorch by "
                              f"{errors[b]:.3g} > tolerance {tolerance:g} at batch {b}, "
                              f"element {list(map(int, where))}; nothing was written")
    return errors


def export_generator(variant_or_G, path: str | os.PathLike, *, opset: int | None = None,
                     fp16: bool = False, meta: dict | None = None, validate: bool = True,
                     batch_sizes: Sequence[int] = VALIDATE_BATCHES,
                     tolerance: float | None = None, verbose: bool = False,
                     conv_form: bool = False) -> dict:
    """Export a generator to ``path`` (.onnx); validate it before it appears there.

    Args:
        variant_or_G: a :class:`Variant` (its ``G`` is exported), or a bare generator with
            ``meta`` giving ``latent`` (LatentSpec or its dict), ``variant``, ``output_range``.
        opset: ONNX opset (default :data:`DEFAULT_OPSET`).
        fp16: float16 weights/activations inside, float32 inputs and output.
        meta: extra metadata: ``step`` (training steps), ``source`` (checkpoint), ``ema``.
        validate: compare onnxruntime with eager PyTorch at ``batch_sizes``.
        tolerance: max abs error allowed (default :data:`FP32_TOLERANCE` or
            :data:`FP16_TOLERANCE` for the output range).
        verbose: print the per-batch errors.
        conv_form: ConvTranspose2d layers as Conv2d + pixel shuffle (the int8 path's input;
            validated against the original generator like any export).
    Returns:
        report dict: path, variant, exporter, opset, dtype, max_abs_err {batch: err},
        tolerance, seconds (total), export_seconds, validate_seconds, size_bytes,
        batchnorm_nodes, metadata (the props written).
    Raises:
        ExportError (a UserError) when export or validation fails; ``path`` is then untouched.
    """
    t0 = time.perf_counter()
    opset = check_opset(DEFAULT_OPSET if opset is None else opset)
    G, latent, fields = _model_meta(variant_or_G, meta)
    path = Path(path)
    if tolerance is None:
        tolerance = FP16_TOLERANCE[fields["output_range"]] if fp16 else FP32_TOLERANCE

    try:  # first, so an unwritable folder fails before the export work
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise ExportError(f"cannot write to {path.parent} ({exc.strerror or exc}); pass an "
                          "--out in a writable folder") from None
    tmp = Path(tmp_name)
    try:
        return _export_to(tmp, path, G, latent, fields, opset, fp16, validate, batch_sizes,
                          tolerance, verbose, t0, conv_form)
    finally:
        tmp.unlink(missing_ok=True)


def _export_to(tmp: Path, path: Path, G: nn.Module, latent: LatentSpec, fields: dict,
               opset: int, fp16: bool, validate: bool, batch_sizes: Sequence[int],
               tolerance: float, verbose: bool, t0: float, conv_form: bool = False) -> dict:
    label = f"{fields['variant']} generator"
    example = latent.sample(EXAMPLE_BATCH, "cpu", torch.Generator().manual_seed(0))
    model = prepare_generator(G, example, conv_form=conv_form)
    fields = {**fields, "image_shape": image_shape_of(model, example, label)}
    if fp16:
        model = HalfPrecision(model).eval()
    proto, exporter = _to_onnx(model, example, opset, label)
    got_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if got_opset != opset:
        raise ExportError(f"asked for opset {opset}, the exporter wrote {got_opset}")

    model_meta = ModelMeta(
        **fields, dtype="float16" if fp16 else "float32", io_dtype="float32", opset=opset,
        exporter=exporter, versions={"gan_accel": __version__,
                                     "torch": torch.__version__, "onnx": onnx.__version__})
    props = model_meta.to_props()
    for node in proto.graph.node:  # the exporter's per-node stack traces name local files
        del node.metadata_props[:]
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name, proto.producer_version = "gan-accel", __version__
    proto.doc_string = (f"gan-accel {fields['variant']} generator: inputs "
                        f"{latent.input_names}, output {OUTPUT_NAME} [batch, "
                        f"{', '.join(map(str, fields['image_shape']))}] in "
                        f"{fields['output_range']} range")
    t_export = time.perf_counter() - t0

    size = save_onnx(proto, tmp, path)
    errors = (validate_onnx(tmp, G, latent, tolerance, batch_sizes, label=label)
              if validate else {})
    try:
        os.chmod(tmp, 0o644)  # mkstemp made it private; an exported model is for sharing
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(path, size, NOTHING_WRITTEN, exc) from None
        raise ExportError(f"cannot write {path} ({exc.strerror or exc})") from None
    t_total = time.perf_counter() - t0
    report = {
        "path": str(path), "variant": fields["variant"],
        "image_shape": format_image_shape(fields["image_shape"]), "exporter": exporter,
        "opset": opset,
        "dtype": model_meta.dtype, "max_abs_err": errors, "tolerance": tolerance,
        "seconds": t_total, "export_seconds": t_export, "validate_seconds": t_total - t_export,
        "size_bytes": path.stat().st_size,
        "batchnorm_nodes": _count_ops(proto, "BatchNormalization"), "metadata": props,
    }
    if verbose:
        for b, e in errors.items():
            print(f"  batch {b:>3}: max |onnxruntime - eager| = {e:.2e} (tolerance {tolerance:g})")
    return report


def save_onnx(proto: onnx.ModelProto, tmp: Path, path: Path) -> int:
    """Serialise ``proto`` (weights inside: no external data file) into ``tmp``, the
    temporary beside ``path``, and fsync it; returns its size. A full disk removes ``tmp``
    and raises DiskFullError naming ``path`` and the model's size; any other refusal is an
    ExportError."""
    data = proto.SerializeToString()
    write_model_bytes(data, tmp, path)
    return len(data)


def write_model_bytes(data: bytes, tmp: Path, path: Path) -> None:
    """Write an exported model's bytes into ``tmp``, the temporary beside ``path``, and fsync
    it. A full disk removes ``tmp`` and raises DiskFullError naming ``path`` and the size; any
    other refusal is an ExportError."""
    try:
        write_bytes_to(tmp, data, sync=True)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(path, len(data), NOTHING_WRITTEN, exc) from None
        raise ExportError(f"cannot write {tmp} ({exc.strerror or exc})") from None


def checkpoint_meta(ckpt_meta: dict) -> dict:
    """``meta`` for :func:`export_generator` from :func:`gan_accel.checkpoints.load_trained`'s."""
    step = (ckpt_meta.get("position") or {}).get("step")
    return {"step": int(step) if step is not None else None,
            "source": str(ckpt_meta.get("checkpoint", "")), "ema": bool(ckpt_meta["ema"])}


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, *,
                      best: bool = False, ema: bool | None = None, **kw) -> dict:
    """Load a run's generator (``load_trained``: its EMA G unless ``ema=False``) and
    :func:`export_generator` it."""
    variant, ckpt_meta = load_trained(checkpoint, "best" if best else "last", ema, "cpu")
    return export_generator(variant, path, meta=checkpoint_meta(ckpt_meta), **kw)
