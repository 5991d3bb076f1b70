"""``python -m gan_accel.export``: a trained generator to a validated deployment artifact.

    python -m gan_accel.export --checkpoint runs/dcgan --out g.onnx [--opset 18] [--fp16]
    python -m gan_accel.export --checkpoint runs/dcgan --out g-int8.onnx --format int8
    python -m gan_accel.export --checkpoint runs/dcgan --out g.pt2 --format pt2
    python -m gan_accel.export --checkpoint runs/dcgan --web playground/   # the browser page
    python -m gan_accel.export --onnx g.onnx --web playground/

``onnx``: fp32 (or ``--fp16``) ONNX, compared with PyTorch in onnxruntime before it is
written. ``int8``: static QDQ int8 ONNX, calibrated on latent draws and kept only when the
quality gate passes, measured on the run's own images (:mod:`gan_accel.export.quantize`).
``pt2``: an AOTInductor package with a dynamic batch axis, loaded back and compared with PyTorch
(:mod:`gan_accel.export.aoti`). ``--web DIR``: a static page running the ONNX generator in
the browser with onnxruntime-web (:mod:`gan_accel.export.web`). The work is in
:mod:`gan_accel.export` (imported lazily).
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
from pathlib import Path

from ..errors import OneLineParser, UserError, run_cli


class Format(str, enum.Enum):
    ONNX = "onnx"
    INT8 = "int8"
    PT2 = "pt2"

    @property
    def suffix(self) -> str:
        return ".pt2" if self is Format.PT2 else ".onnx"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="gan_accel.export",
                      description="Export a trained generator to ONNX (fp32/fp16), int8 ONNX "
                                  "or an AOTInductor .pt2 package, validated against PyTorch "
                                  "before it is written.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="RUN_DIR",
                     help="run dir or checkpoint .json written by gan_accel.train")
    src.add_argument("--onnx", metavar="MODEL",
                     help="an exported .onnx generator (with --web: the page for it)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="output file (.onnx for onnx/int8, .pt2 for pt2); optional with --web")
    w = p.add_argument_group("browser page (--web)")
    w.add_argument("--web", metavar="DIR", default=None,
                   help="write a static page into DIR that runs the ONNX generator in the "
                        "browser (onnxruntime-web): latent sliders, new seed, class picker "
                        "(cgan), code sliders (infogan), interpolation; serve DIR over http "
                        "(gan-accel serve MODEL --web DIR, or python -m http.server)")
    w.add_argument("--ort-web", metavar="PATH", default=None,
                   help="onnxruntime-web's npm package (folder or npm pack .tgz) to copy the "
                        "page's runtime from (default: $GAN_ACCEL_ORT_WEB, then the cache "
                        "~/.cache/gan-accel/onnxruntime-web-VERSION)")
    w.add_argument("--fetch-ort-web", action="store_true",
                   help="fetch the pinned onnxruntime-web into the cache once with npm pack "
                        "when it is not there")
    p.add_argument("--format", choices=[f.value for f in Format], default=Format.ONNX.value,
                   help="onnx: fp32/fp16 ONNX (default); int8: quantised QDQ ONNX, kept only "
                        "if the quality gate passes; pt2: AOTInductor package")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset (default: 18, the lowest the exporter writes natively)")
    p.add_argument("--fp16", action="store_true",
                   help="onnx: float16 weights and activations (inputs/output stay float32)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="export the EMA generator (default: when the run kept one) or, with "
                        "--no-ema, the trained G itself")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint")
    q = p.add_argument_group("int8")
    q.add_argument("--calibration-batches", type=int, default=16, metavar="N",
                   help="latent batches the activation ranges are calibrated on (default: 16)")
    q.add_argument("--calibration-batch-size", type=int, default=128, metavar="B",
                   help="latents per calibration batch (default: 128)")
    q.add_argument("--gate-samples", type=int, default=None, metavar="N",
                   help="samples the quality gate compares, int8 vs fp32, in the evaluation "
                        "feature space of the run's own images (default: 2000, or half the "
                        "images of a smaller set)")
    a = p.add_argument_group("pt2")
    a.add_argument("--device", default="cpu",
                   help="pt2: where the compiled kernels run, cpu or cuda (default: cpu)")
    a.add_argument("--threads", type=int, default=None, metavar="N",
                   help="pt2 on CPU: the OpenMP threads compiled into the package (default: "
                        "the CPUs this process may use)")
    return p


def check_output(path: Path, fmt: Format = Format.ONNX) -> None:
    """UserError unless ``path`` is a writable file path with the format's suffix."""
    if path.suffix.lower() != fmt.suffix:
        raise UserError(f"--out {path} must end in {fmt.suffix} for --format {fmt.value}")
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; pass a file name like "
                        f"{path}/g{fmt.suffix}")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to folder {folder}; pass another --out")


def _check_flags(args, fmt: Format) -> None:
    if args.fp16 and fmt is not Format.ONNX:
        raise UserError(f"--fp16 applies to --format onnx, not {fmt.value}")
    if args.opset is not None and fmt is Format.PT2:
        raise UserError("--opset applies to ONNX formats, not pt2")
    if fmt is not Format.PT2 and (args.device != "cpu" or args.threads is not None):
        raise UserError("--device / --threads apply to --format pt2")
    for flag in ("calibration_batches", "calibration_batch_size", "gate_samples"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.gate_samples is not None and args.gate_samples < 2:
        raise UserError("--gate-samples must be >= 2 (FID needs two or more samples)")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    fmt = Format(args.format)
    if args.web is not None:
        return _export_web(args, fmt)
    if args.onnx is not None:
        raise UserError("--onnx goes with --web DIR (the page for an exported model); to "
                        "export, pass --checkpoint RUN_DIR")
    if args.out is None:
        raise UserError("--out FILE is required (or --web DIR for the browser page)")
    _check_flags(args, fmt)
    return _export_file(args, fmt, Path(args.out))


def _export_file(args, fmt: Format, out: Path) -> int:
    check_output(out, fmt)
    if fmt is Format.PT2:
        return _export_pt2(args, out)
    from ..export.onnx_export import DEFAULT_OPSET, check_opset, export_checkpoint

    opset = check_opset(DEFAULT_OPSET if args.opset is None else args.opset)
    if fmt is Format.INT8:
        return _export_int8(args, out, opset)
    report = export_checkpoint(args.checkpoint, out, best=args.best, ema=args.ema,
                               opset=opset, fp16=args.fp16)
    meta = report["metadata"]
    for b, err in report["max_abs_err"].items():
        print(f"validated batch {b:>3}: max |onnxruntime - pytorch| = {err:.2e} "
              f"(tolerance {report['tolerance']:g})")
    print(f"wrote {out} ({report['size_bytes'] / 1024:.0f} KiB): {report['variant']} generator "
          f"({meta['image_shape']} images), step {meta['step'] or '?'}, inputs "
          f"{meta['input_names']}, {report['dtype']}, opset {report['opset']}, "
          f"{report['exporter']} exporter, {report['seconds']:.1f} s")
    return 0


def _export_web(args, fmt: Format) -> int:
    """``--web DIR``: the page for ``--onnx MODEL``, or for the model exported from
    ``--checkpoint`` (to ``--out`` when given, else to a temporary file)."""
    import tempfile

    from ..export import web

    if fmt is Format.PT2:
        raise UserError("--web runs an ONNX model in the browser; use --format onnx or int8")
    out_dir = Path(args.web)
    web.check_out_dir(out_dir)
    if args.onnx is not None:
        model = Path(args.onnx)
        if (args.out is not None or fmt is not Format.ONNX or args.fp16 or args.opset
                or args.best or args.ema is not None):
            raise UserError("--onnx MODEL is exported already; drop --out / --format / --fp16 / "
                            "--opset / --best / --ema")
        if not model.is_file():
            raise UserError(f"--onnx {model} does not exist; export one with --checkpoint "
                            "RUN_DIR --out FILE")
    else:
        _check_flags(args, fmt)
        if args.out is not None:
            check_output(Path(args.out), fmt)
    # the runtime files first: a missing package fails before any export work
    ort_web = (web.fetch_ort_web() if args.fetch_ort_web and args.ort_web is None
               else web.find_ort_web(args.ort_web))
    with tempfile.TemporaryDirectory(prefix="gan-accel-web-") as tmp:
        if args.onnx is None:
            model = Path(args.out) if args.out is not None else Path(tmp) / "model.onnx"
            _export_file(args, fmt, model)
        from ..export.runtime import ModelFileError

        try:
            card = web.export_web(model, out_dir, ort_web)
        except ModelFileError as exc:
            raise UserError(str(exc)) from None
    image = card["image"]
    print(f"wrote the page for {card['variant']} ({image['channels']}x{image['height']}x"
          f"{image['width']}) into {out_dir}: open it over http, e.g. `gan-accel serve "
          f"{out_dir / web.MODEL_FILE} --web {out_dir}` then http://127.0.0.1:8000/")
    return 0


def _export_int8(args, out: Path, opset: int) -> int:
    from ..export.quantize import Calibration, format_report, quantize_checkpoint

    if opset != 18:
        raise UserError("--format int8 exports at opset 18 (the quantiser's tested opset); "
                        "drop --opset")
    calibration = Calibration(batches=args.calibration_batches,
                              batch_size=args.calibration_batch_size)
    report = quantize_checkpoint(args.checkpoint, out, best=args.best, ema=args.ema,
                                 calibration=calibration, gate_samples=args.gate_samples)
    print(format_report(report))
    print(f"wrote {out} ({report['size_bytes'] / 1024:.0f} KiB, fp32 "
          f"{report['fp32_size_bytes'] / 1024:.0f} KiB): {report['variant']} generator "
          f"({report['metadata']['image_shape']} images), int8 QDQ, {report['seconds']:.1f} s")
    return 0


def _export_pt2(args, out: Path) -> int:
    import torch

    from ..devices import select_device
    from ..export.aoti import export_pt2_checkpoint

    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = export_pt2_checkpoint(args.checkpoint, out, best=args.best, ema=args.ema,
                                   device=str(device))
    for b, err in report["max_abs_err"].items():
        print(f"validated batch {b:>3}: max |pt2 - pytorch| = {err:.2e} "
              f"(tolerance {report['tolerance']:g})")
    print(f"wrote {out} ({report['size_bytes'] / 1024:.0f} KiB): {report['variant']} generator "
          f"({report['image_shape']} images), AOTInductor for {report['device']} "
          f"({report['threads']} threads), dynamic batch, "
          f"compiled in {report['compile_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
