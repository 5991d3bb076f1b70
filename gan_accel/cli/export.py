"""``python -m gan_accel.export``: a trained generator to a validated ONNX file.

    python -m gan_accel.export --checkpoint runs/dcgan --out g.onnx [--opset 18] [--fp16]

The work is in :mod:`gan_accel.export` (imported lazily, inside :func:`main`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import OneLineParser, UserError, run_cli


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="gan_accel.export",
                      description="Export a trained generator to ONNX, validated against "
                                  "PyTorch with onnxruntime before it is written.")
    p.add_argument("--checkpoint", metavar="RUN_DIR", required=True,
                   help="run dir or checkpoint .json written by gan_accel.train")
    p.add_argument("--out", metavar="FILE", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset (default: 18, the lowest the exporter writes natively)")
    p.add_argument("--fp16", action="store_true",
                   help="float16 weights and activations (inputs/output stay float32)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="export the EMA generator (default: when the run kept one) or, with "
                        "--no-ema, the trained G itself")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint")
    return p


def check_output(path: Path) -> None:
    """UserError unless ``path`` is a writable .onnx file path."""
    if path.suffix.lower() != ".onnx":
        raise UserError(f"--out {path} must end in .onnx")
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; pass a file name like {path}/g.onnx")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to folder {folder}; pass another --out")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..export.onnx_export import DEFAULT_OPSET, check_opset, export_checkpoint

    opset = check_opset(DEFAULT_OPSET if args.opset is None else args.opset)
    out = Path(args.out)
    check_output(out)
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


if __name__ == "__main__":
    sys.exit(run_cli(main))
