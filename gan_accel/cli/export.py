"""``python -m gan_accel.export``: a trained generator to a validated deployment artifact.

    python -m gan_accel.export --checkpoint runs/dcgan --out g.onnx [--opset 18] [--fp16]
    python -m gan_accel.export --checkpoint runs/dcgan --out g-int8.onnx --format int8
    python -m gan_accel.export --checkpoint runs/dcgan --out g.pt2 --format pt2

``onnx``: fp32 (or ``--fp16``) ONNX, compared with PyTorch in onnxruntime before it is
written. ``int8``: static QDQ int8 ONNX, calibrated on latent draws and kept only when the
evaluation classifier's quality gate passes (:mod:`gan_accel.export.quantize`). ``pt2``: an
AOTInductor package with a dynamic batch axis, loaded back and compared with PyTorch
(:mod:`gan_accel.export.aoti`). The work is in :mod:`gan_accel.export` (imported lazily).
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
    p.add_argument("--checkpoint", metavar="RUN_DIR", required=True,
                   help="run dir or checkpoint .json written by gan_accel.train")
    p.add_argument("--out", metavar="FILE", required=True,
                   help="output file (.onnx for onnx/int8, .pt2 for pt2)")
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
    q.add_argument("--gate-samples", type=int, default=2000, metavar="N",
                   help="samples the quality gate compares, int8 vs fp32 (default: 2000)")
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
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.gate_samples < 2:
        raise UserError("--gate-samples must be >= 2 (FID needs two or more samples)")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    fmt = Format(args.format)
    _check_flags(args, fmt)
    out = Path(args.out)
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
    print(f"wrote {out} ({report['size_bytes'] / 1024:.0f} KiB): {report['variant']} generator, "
          f"step {meta['step'] or '?'}, inputs {meta['input_names']}, {report['dtype']}, "
          f"opset {report['opset']}, {report['exporter']} exporter, "
          f"{report['seconds']:.1f} s")
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
          f"{report['fp32_size_bytes'] / 1024:.0f} KiB): {report['variant']} generator, int8 "
          f"QDQ, {report['seconds']:.1f} s")
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
    print(f"wrote {out} ({report['size_bytes'] / 1024:.0f} KiB): {report['variant']} generator, "
          f"AOTInductor for {report['device']} ({report['threads']} threads), dynamic batch, "
          f"compiled in {report['compile_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
