"""INT8 export: static QDQ quantization of a generator, kept only when its quality holds.

Pipeline (every file in a temporary folder beside ``path``; only a model that passes the
gate is renamed onto ``path``):

1. fp32 ONNX in conv form (:mod:`export.conv_form`: ConvTranspose2d as Conv2d + pixel
   shuffle, since onnxruntime has no int8 ConvTranspose), validated against the eager
   generator like every export (:func:`export.onnx_export.export_generator`).
2. ``onnxruntime.quantization.quantize_static``: QDQ format, weights int8 per output
   channel, activations uint8 (onnxruntime's advice for x86 CPUs, with or without VNNI),
   ranges calibrated (MinMax) on latent draws from the generator's own latent
   distribution (:class:`LatentCalibrationReader`).
3. The quality gate (:class:`Gate`): the same latents through the fp32 generator and the
   int8 model, both measured in the evaluation feature space of the run's own images
   (:mod:`gan_accel.evaluation`, at the run's resolution and channels): the FID (against the
   same real images) may move by ``<= 5%`` relative, and where that space is a classifier
   (MNIST / Fashion-MNIST: the shipped one; a labelled folder or emoji: the one trained on
   its own split, trained first if its cache has none) its class must agree on ``>= 98%``
   of the samples. An unlabelled folder is measured in ``random-cnn-seed0``, which has no
   classes: there the FID change alone decides, and the report says so. The samples are
   ``--gate-samples``, by default 2,000 or, for a smaller set, the most it holds a
   real-vs-real floor for (half its images). A refused model raises
   :class:`QualityGateError`; nothing is written.
4. Which operators still run in float: read from the graph onnxruntime actually runs
   (optimisation level ``all``), see :func:`float_operators`.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from ..atomic import disk_full_error, disk_is_full, is_disk_full
from ..errors import DiskFullError
from ..latent import LatentSpec
from ..ranges import OutputRange
from .metadata import OUTPUT_NAME, ModelMeta
from .onnx_export import (
    EXAMPLE_BATCH,
    NOTHING_WRITTEN,
    ExportError,
    _first_line,
    _model_meta,
    _quiet,
    checkpoint_meta,
    export_generator,
    image_shape_of,
)

ACTIVATION_TYPE, WEIGHT_TYPE = QuantType.QUInt8, QuantType.QInt8
CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax,
                       "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}

# Ops that move or pick int8 values without arithmetic: onnxruntime runs them on the int8
# tensor once the QDQ pairs around them are dropped (their output has their input's type).
DATA_MOVEMENT = {"Reshape", "Transpose", "Slice", "Squeeze", "Unsqueeze", "Flatten",
                 "Identity", "Gather", "DepthToSpace", "SpaceToDepth", "Split", "Expand",
                 "Tile", "MaxPool", "Concat", "Pad", "Resize"}
STRUCTURAL = {"QuantizeLinear", "DequantizeLinear", "Shape", "Constant", "Cast"}
# measured on a 30-epoch DCGAN (2,000 gate samples) when this rule was chosen
WHY_LATENT = ("reads the latent input, kept in float by design: with z quantised to 8 bits "
              "per tensor the evaluation classifier's class moved on 2.1% of the samples of a "
              "30-epoch DCGAN (gate: <= 2%), 1.05% with this layer in float; it is ~1% of the "
              "DCGAN generator's multiply-adds")
WHY_FLOAT = {
    "ConvTranspose": "onnxruntime's CPU EP has no int8 ConvTranspose kernel; it runs in float "
                     "between DequantizeLinear and QuantizeLinear (export.conv_form rewrites "
                     "it as Conv + pixel shuffle to avoid that)",
    "Tanh": "onnxruntime's CPU EP has no int8 Tanh (QLinear*) kernel",
    "Gemm": "a Gemm left in float: onnxruntime fuses DQ -> Gemm -> Q into QGemm only when "
            "its input and output are quantized",
}


class QualityGateError(ExportError):
    """The int8 model did not keep the fp32 model's quality; nothing was written."""


@dataclass(frozen=True)
class Calibration:
    """What the activation ranges are calibrated on: ``batches`` x ``batch_size`` latent
    draws from the generator's own distribution (seed ``seed``), reduced by ``method``."""

    batches: int = 16
    batch_size: int = 128
    seed: int = 1
    method: str = "minmax"

    def describe(self) -> str:
        return (f"{self.batches} x {self.batch_size} latent draws (seed {self.seed}), "
                f"{self.method}")


DEFAULT_GATE_SAMPLES = 2000


@dataclass(frozen=True)
class Gate:
    """The quality an int8 model must keep against its fp32 model on ``samples`` latents,
    measured on the images of ``dataset`` (``data_dir``, ``resolution``, ``channels``,
    ``background``: as the run loaded them; 0 / None: the dataset's own)."""

    samples: int | None = DEFAULT_GATE_SAMPLES  # None: 2000, or the most the data allows
    min_agreement: float = 0.98  # evaluation-classifier class, int8 == fp32
    max_fid_change: float = 0.05  # |FID int8 - FID fp32| / FID fp32
    dataset: str = "mnist-5k"  # which evaluation feature space and real images
    seed: int = 1000  # latent seed of the gate samples (not the calibration's)
    data_dir: str | None = None
    resolution: int = 0
    channels: int = 0
    background: float | None = None

    @classmethod
    def for_config(cls, cfg, samples: int | None = None) -> Gate:
        """The gate of a run's config: its dataset at the resolution and channels it
        trained at."""
        return cls(samples=samples, dataset=cfg.dataset, data_dir=cfg.data_dir,
                   resolution=cfg.resolution, channels=cfg.channels,
                   background=getattr(cfg, "background", None))


class LatentCalibrationReader(CalibrationDataReader):
    """Calibration feeds: latent batches drawn with numpy from ``spec`` (like the runtime)."""

    def __init__(self, spec: LatentSpec, calibration: Calibration = Calibration()):
        self.spec, self.calibration = spec, calibration
        self.rewind()

    def rewind(self) -> None:
        rng = np.random.default_rng(self.calibration.seed)
        c = self.calibration
        self._batches = iter([self.spec.sample_numpy(c.batch_size, rng)
                              for _ in range(c.batches)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


# ---------------------------------------------------------------------------------------------
# the quality gate
# ---------------------------------------------------------------------------------------------
def gate_latents(spec: LatentSpec, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` latents from ``seed``; conditional models cycle through their classes."""
    classes = np.arange(n) % spec.num_labels if spec.num_labels else None
    return spec.sample_numpy(n, np.random.default_rng(seed), classes)


def _eager_images(G: torch.nn.Module, feeds: dict[str, np.ndarray], batch: int = 500
                  ) -> np.ndarray:
    ref = copy.deepcopy(G).float().cpu().eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(feeds["z"]), batch):
            out.append(ref(**{k: torch.from_numpy(v[i:i + batch]) for k, v in feeds.items()})
                       .numpy())
    return np.concatenate(out)


def _onnx_images(path: Path, feeds: dict[str, np.ndarray], threads: int | None,
                 batch: int = 500) -> np.ndarray:
    import onnxruntime as ort

    from .runtime import CPU, session_options

    session = ort.InferenceSession(str(path), session_options(threads), providers=[CPU])
    return np.concatenate([session.run([OUTPUT_NAME], {k: v[i:i + batch]
                                                       for k, v in feeds.items()})[0]
                           for i in range(0, len(feeds["z"]), batch)])


def gate_real_data(gate: Gate):
    """(the real images the gate's FID uses, ``gate`` with its sample count): UserError if
    ``gate.samples`` does not fit; ``None`` samples become 2000 or, for a smaller set, the
    most it holds a floor for."""
    from ..evaluation import load_real_data

    real = load_real_data(gate.dataset, gate.data_dir, log=lambda *_: None,
                          resolution=gate.resolution, channels=gate.channels,
                          background=gate.background)
    if gate.samples is None:
        gate = replace(gate, samples=min(DEFAULT_GATE_SAMPLES, real.max_n()))
    real.check_n(gate.samples, "--gate-samples")
    return real, gate


def _check_gate_shape(real, image_shape: tuple[int, int, int], label: str) -> None:
    """UserError before the work when the gate's real images and the generator's differ."""
    if tuple(real.image_shape) != tuple(image_shape):
        fmt = "x".join
        raise ExportError(f"the {label} makes {fmt(map(str, image_shape))} images but the "
                          f"gate's {real.dataset} images are {fmt(map(str, real.image_shape))}; "
                          "quantize the run's checkpoint (its data is the gate's) or pass a "
                          "Gate with the resolution and channels it was trained at")


def quality_gate(fp32: np.ndarray, int8: np.ndarray, output_range: str, gate: Gate,
                 real=None) -> dict:
    """Measure both image sets (same latents) in the evaluation feature space of the gate's
    data; returns the figures and ``passed``. Images are ``[n, C, H, W]`` float32 in
    ``output_range``; ``real``: :func:`gate_real_data`'s (loaded here when not given).
    ``agreement`` is None where the space has no classes (an unlabelled folder)."""
    from ..evaluation import build_real_features, feature_space_for
    from ..evaluation.metrics import frechet_distance

    real = real if real is not None else gate_real_data(gate)[0]
    space = feature_space_for(real, "auto")
    real_features = build_real_features(space, real, len(fp32), kid_subsets=1)
    rng = OutputRange(output_range)
    feats, preds = {}, {}
    for name, images in (("fp32", fp32), ("int8", int8)):
        if not np.isfinite(images).all():
            raise QualityGateError(f"the {name} model produced NaN/inf pixels; nothing was "
                                   "written")
        feats[name], preds[name] = space.extract(
            rng.to_unit(torch.from_numpy(np.ascontiguousarray(images)).float()))
    fid = {k: frechet_distance(real_features.feats, f) for k, f in feats.items()}
    agreement = (None if preds["fp32"] is None
                 else float((preds["int8"] == preds["fp32"]).double().mean()))
    change = abs(fid["int8"] - fid["fp32"]) / fid["fp32"]
    err = np.abs(int8.astype(np.float64) - fp32)
    return {
        "samples": len(fp32), "dataset": gate.dataset, "seed": gate.seed,
        "feature_space": space.name,
        "agreement": agreement, "min_agreement": gate.min_agreement,
        "fid_fp32": fid["fp32"], "fid_int8": fid["int8"], "fid_change": change,
        "max_fid_change": gate.max_fid_change, "fid_floor": real_features.fid_floor,
        "max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
        "passed": ((agreement is None or agreement >= gate.min_agreement)
                   and change <= gate.max_fid_change),
    }


def _agreement_text(g: dict) -> str:
    if g["agreement"] is None:
        return (f"no classes in {g['feature_space']} (unlabelled data): the FID change "
                "alone decides")
    return f"classifier agreement {g['agreement']:.2%} (>= {g['min_agreement']:.0%})"


def _gate_message(label: str, g: dict) -> str:
    misses = []
    if g["agreement"] is not None and not g["agreement"] >= g["min_agreement"]:
        misses.append(f"the evaluation classifier agrees with fp32 on {g['agreement']:.1%} of "
                      f"{g['samples']} samples < {g['min_agreement']:.0%}")
    if not g["fid_change"] <= g["max_fid_change"]:
        misses.append(f"FID {g['fid_int8']:.2f} vs fp32 {g['fid_fp32']:.2f} "
                      f"({g['fid_change']:+.1%}, {g['feature_space']}) moves more than "
                      f"{g['max_fid_change']:.0%}")
    return (f"int8 quality gate refused the {label}: {'; '.join(misses)}; nothing was "
            "written (calibrate on more latent draws, or serve the fp32 export)")


# ---------------------------------------------------------------------------------------------
# which operators run in float
# ---------------------------------------------------------------------------------------------
def _node_output_is_int(node: onnx.NodeProto, dtype: dict[str, bool]) -> bool:
    op = node.op_type
    if op == "QuantizeLinear" or op.startswith("QLinear"):
        return True
    if op == "QGemm":  # int8 out when it has an output scale (inputs 7, 8)
        return len(node.input) > 7 and bool(node.input[7])
    if op in DATA_MOVEMENT and node.input:
        return dtype.get(node.input[0], False)
    return False


def float_operators(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], Counter]:
    """(float compute nodes, int8 compute op counts) of an onnxruntime-optimised graph.

    Types are propagated from the graph inputs and initializers: QuantizeLinear and the
    QLinear* / QGemm kernels produce int8, data movement keeps its input's type, everything
    else computes in float. Q/DQ themselves and data movement are counted in neither.
    """
    ints = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    is_int = {t.name: t.data_type in ints for t in model.graph.initializer}
    for value in model.graph.input:
        is_int[value.name] = value.type.tensor_type.elem_type in ints
    floats, int8 = [], Counter()
    for node in model.graph.node:  # onnxruntime saves the graph in topological order
        out_int = _node_output_is_int(node, is_int)
        for name in node.output:
            is_int[name] = out_int
        if node.op_type in STRUCTURAL or node.op_type in DATA_MOVEMENT:
            continue
        if out_int or node.op_type == "QGemm":
            int8[node.op_type] += 1
        else:
            floats.append(node)
    return floats, int8


def latent_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes that read the float latent inputs: the first compute node(s) after
    each float graph input, and the data movement between (kept in float, see WHY_LATENT)."""
    floats = {v.name for v in model.graph.input
              if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found: list[str] = []
    frontier = list(floats)
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.name in found:
                continue
            found.append(node.name)
            if node.op_type in DATA_MOVEMENT:
                frontier.extend(node.output)
    return found


def runtime_graph(path: Path, folder: Path) -> onnx.ModelProto:
    """The graph onnxruntime's CPU EP runs for ``path`` (optimisation level ``all``)."""
    import onnxruntime as ort

    from .runtime import CPU, session_options

    so = session_options(1)
    saved = folder / "runtime-graph.onnx"
    so.optimized_model_filepath = str(saved)
    try:
        ort.InferenceSession(str(path), so, providers=[CPU])
    except Exception as exc:  # onnxruntime reports a failed save as a protobuf error only
        if disk_is_full(folder):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(saved)) from exc
        raise
    return onnx.load(str(saved))


def describe_float_ops(floats: list[onnx.NodeProto], kept: list[str]) -> list[dict]:
    """One entry per float op type: how many, and why each stayed float."""
    default = ("no int8 kernel or QDQ fusion for this op in onnxruntime's CPU EP: it runs in "
               "float between DequantizeLinear and QuantizeLinear")
    by_reason: Counter = Counter()
    for node in floats:
        reason = WHY_LATENT if node.name in kept else WHY_FLOAT.get(node.op_type, default)
        by_reason[node.op_type, reason] += 1
    return [{"op": op, "count": n, "reason": reason}
            for (op, reason), n in sorted(by_reason.items())]


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
def quantize_generator(variant_or_G, path: str | os.PathLike, *, meta: dict | None = None,
                       calibration: Calibration = Calibration(), gate: Gate | None = None,
                       reader: CalibrationDataReader | None = None,
                       threads: int | None = None, verbose: bool = False) -> dict:
    """Export an int8 (QDQ) ONNX generator to ``path``, only if it passes ``gate``.

    Args:
        variant_or_G, meta: as for :func:`export.onnx_export.export_generator`.
        calibration: the latent draws the activation ranges are calibrated on.
        gate: the quality the int8 model must keep (see the module docstring); default:
            a variant's own data (:meth:`Gate.for_config` of ``variant.cfg``), for a bare
            generator :class:`Gate` () (mnist-5k).
        reader: calibration feeds to use instead of ``calibration``'s latent draws.
        threads: onnxruntime threads for calibration and the gate.
    Returns:
        report dict: path, variant, dtype ("int8"), calibration, gate (its figures),
        float_ops / int8_ops (op type counts of the graph onnxruntime runs, with the reason
        each float op stayed float), fp32_max_abs_err (conv form vs eager), size_bytes,
        seconds, metadata.
    Raises:
        QualityGateError when the gate refuses the model, ExportError when export fails;
        ``path`` is then untouched.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if calibration.method not in CALIBRATION_METHODS:
        raise ExportError(f"calibration method {calibration.method!r} is not one of "
                          f"{', '.join(CALIBRATION_METHODS)}")
    G, latent, fields = _model_meta(variant_or_G, meta)
    label = f"{fields['variant']} generator"
    if gate is None:
        cfg = getattr(variant_or_G, "cfg", None)
        gate = Gate() if cfg is None else Gate.for_config(cfg)
    real, gate = gate_real_data(gate)  # a bad --gate-samples fails here, before the work
    example = latent.sample(EXAMPLE_BATCH, "cpu", torch.Generator().manual_seed(0))
    _check_gate_shape(real, image_shape_of(copy.deepcopy(G).float().cpu().eval(), example,
                                           label), label)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise ExportError(f"cannot write to {path.parent} ({exc.strerror or exc}); pass an "
                          "--out in a writable folder") from None
    fp32_size = None
    try:
        fp32_path, int8_path = work / "fp32-conv.onnx", work / "int8.onnx"
        try:
            fp32 = export_generator(G, fp32_path, meta={**fields_meta(fields, latent), **{
                k: fields[k] for k in ("step", "source", "ema") if k in fields}},
                conv_form=True)
        except DiskFullError as exc:
            fp32_size = exc.needed
            raise
        fp32_size = fp32["size_bytes"]
        kept = latent_nodes(onnx.load(str(fp32_path)))
        feeds_reader = reader if reader is not None else LatentCalibrationReader(latent,
                                                                                calibration)
        if hasattr(feeds_reader, "rewind"):
            feeds_reader.rewind()
        t_cal = time.perf_counter()
        try:
            with _quiet(), _no_root_warnings():
                quantize_static(
                    str(fp32_path), str(int8_path), feeds_reader, quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=False, activation_type=ACTIVATION_TYPE,
                    weight_type=WEIGHT_TYPE, nodes_to_exclude=kept,
                    calibrate_method=CALIBRATION_METHODS[calibration.method],
                    calibration_providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime.quantization raises plain ValueErrors
            if is_disk_full(exc):
                raise
            raise ExportError(f"int8 calibration of the {label} failed: "
                              f"{_first_line(exc)}") from None
        t_gate = time.perf_counter()
        feeds = gate_latents(latent, gate.samples, gate.seed)
        figures = quality_gate(_eager_images(G, feeds), _onnx_images(int8_path, feeds, threads),
                               fields["output_range"], gate, real)
        if not figures["passed"]:
            raise QualityGateError(_gate_message(label, figures))
        floats, ints = float_operators(runtime_graph(int8_path, work))
        float_ops = describe_float_ops(floats, kept)
        quant = {
            "format": "QDQ", "activations": "uint8 per tensor",
            "weights": "int8 per channel (symmetric)",
            "calibration": (type(reader).__name__ if reader is not None
                            else calibration.describe()),
            "gate": (("agreement n/a (no classes)" if figures["agreement"] is None else
                      f"agreement {figures['agreement']:.4f} >= {gate.min_agreement}")
                     + f", FID {figures['fid_int8']:.3f} vs fp32 {figures['fid_fp32']:.3f} "
                     f"({figures['fid_change']:+.2%}, limit {gate.max_fid_change:.0%}) on "
                     f"{gate.samples} samples ({gate.dataset}, {figures['feature_space']})"),
            "float_ops": ",".join(f"{d['op']}x{d['count']}" for d in float_ops) or "none",
            "int8_ops": ",".join(f"{op}x{n}" for op, n in sorted(ints.items())),
            "onnxruntime": _ort_version(),
        }
        props = _write_metadata(int8_path, fp32["metadata"], quant)
        os.chmod(int8_path, 0o644)
        try:
            os.replace(int8_path, path)
        except OSError as exc:
            if is_disk_full(exc):
                raise
            raise ExportError(f"cannot write {path} ({exc.strerror or exc})") from None
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        shutil.rmtree(work, ignore_errors=True)  # first: the space free without the work
        # the work folder's peak: the fp32 model, then the int8 model and the graph
        # onnxruntime runs, each measured at 0.3-0.45x the fp32 model's size
        needed = 2 * fp32_size if fp32_size is not None else None
        raise disk_full_error(path, needed, NOTHING_WRITTEN, exc) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "path": str(path), "variant": fields["variant"], "dtype": "int8",
        "calibration": {**asdict(calibration), "reader": type(
            reader if reader is not None else LatentCalibrationReader(latent)).__name__},
        "gate": figures, "float_ops": float_ops, "int8_ops": dict(ints),
        "fp32_max_abs_err": fp32["max_abs_err"], "size_bytes": path.stat().st_size,
        "fp32_size_bytes": fp32["size_bytes"], "seconds": time.perf_counter() - t0,
        "calibration_seconds": t_gate - t_cal, "gate_seconds": time.perf_counter() - t_gate,
        "metadata": props,
    }
    if verbose:
        print(format_report(report))
    return report


@contextlib.contextmanager
def _no_root_warnings():
    """quantize_static logs advice to pre-process the model on the root logger; our graph
    already has static shapes from the exporter, so the advice is noise here."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def fields_meta(fields: dict, latent: LatentSpec) -> dict:
    """``meta`` for exporting a bare G with ``fields`` (variant, output range) and ``latent``."""
    return {"latent": latent, "variant": fields["variant"],
            "output_range": fields["output_range"]}


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


def _write_metadata(path: Path, fp32_props: dict, quant: dict) -> dict:
    """The fp32 export's metadata with dtype int8 and the ``quant.*`` facts, into ``path``."""
    meta = ModelMeta.from_props(fp32_props, str(path))
    fields = {**asdict(meta), "dtype": "int8", "quantization": quant}
    props = ModelMeta(**fields).to_props()
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    shape = ", ".join(map(str, meta.image_shape))
    model.doc_string = (f"gan-accel {meta.variant} generator, int8 QDQ: inputs "
                        f"{meta.input_names}, output {OUTPUT_NAME} [batch, {shape}]")
    onnx.save_model(model, str(path))
    return props


def format_report(report: dict) -> str:
    """The lines the CLI prints for an int8 export."""
    g = report["gate"]
    lines = [f"calibrated on {report['metadata'].get('quant.calibration')} "
             f"({report['calibration_seconds']:.1f} s)",
             f"quality gate passed on {g['samples']} samples in {g['feature_space']}: "
             f"{_agreement_text(g)}, FID {g['fid_int8']:.2f} vs "
             f"fp32 {g['fid_fp32']:.2f} ({g['fid_change']:+.2%}, limit "
             f"{g['max_fid_change']:.0%}), max |int8 - fp32| {g['max_abs_err']:.3f}"]
    ints = ", ".join(f"{op} x{n}" for op, n in sorted(report["int8_ops"].items()))
    lines.append(f"int8 kernels: {ints or 'none'}")
    if report["float_ops"]:
        for d in report["float_ops"]:
            lines.append(f"float: {d['op']} x{d['count']}: {d['reason']}")
    else:
        lines.append("float: no compute op (only the QuantizeLinear of the inputs and the "
                     "DequantizeLinear of the image)")
    return "\n".join(lines)


def quantize_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, *,
                        best: bool = False, ema: bool | None = None,
                        gate_samples: int | None = None, **kw) -> dict:
    """Load a run's generator (its EMA G unless ``ema=False``) and :func:`quantize_generator`
    it; the gate measures it on the run's own images (dataset, folder, resolution, channels)
    in their evaluation feature space. ``gate_samples`` None: 2000, or the most the data
    allows."""
    from ..checkpoints import load_trained

    variant, ckpt_meta = load_trained(checkpoint, "best" if best else "last", ema, "cpu")
    gate = Gate.for_config(variant.cfg, gate_samples)
    return quantize_generator(variant, path, meta=checkpoint_meta(ckpt_meta), gate=gate, **kw)
