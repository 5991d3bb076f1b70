"""``python -m gan_accel.sample``: image grids from a trained generator."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from .errors import OneLineParser, UserError, run_cli


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="gan_accel.sample", description="Write a PNG grid of samples.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="RUN_DIR", help="run dir or checkpoint .json")
    src.add_argument("--onnx", metavar="FILE", help="exported generator (.onnx)")
    p.add_argument("--out", default="samples.png", help="output PNG (default: samples.png)")
    p.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    p.add_argument("--nrow", type=int, default=0, help="images per row (0: square-ish)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--label", type=int, default=None,
                   help="class to generate (conditional models; infogan: categorical code)")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint")
    p.add_argument("--ema", action="store_true", help="use the EMA generator")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    return p


def check_output(path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise UserError(f"--out {path} must end in .png")
    if not path.parent.exists() or not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist; create it first")


def sample_checkpoint(args) -> tuple[torch.Tensor, str]:
    from .loading import load_trained

    variant, _ = load_trained(args.checkpoint, "best" if args.best else "last", args.ema,
                              args.device)
    spec = variant.latent
    kw = {}
    if args.label is not None:
        classes = spec.num_classes or spec.cat_dim
        if not classes:
            raise UserError(f"--label needs a conditional model; {variant.name} has no labels")
        if not 0 <= args.label < classes:
            raise UserError(f"--label {args.label} is out of range 0..{classes - 1}")
        fixed = torch.full((args.n,), args.label, dtype=torch.long)
        kw = {"label": fixed} if spec.num_classes else {"cat": fixed}
    gen = torch.Generator().manual_seed(args.seed)
    latent = {k: v.to(args.device) for k, v in spec.sample(args.n, "cpu", gen, **kw).items()}
    with torch.no_grad():
        return variant.G(**latent), variant.output_range


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.n <= 0:
        raise UserError(f"--n must be >= 1, got {args.n}")
    out = Path(args.out)
    check_output(out)
    if args.onnx:
        from export.runtime import sample_onnx_grid

        images, output_range = sample_onnx_grid(args)
    else:
        images, output_range = sample_checkpoint(args)
    from .plots import save_grid

    nrow = args.nrow or max(1, int(round(args.n ** 0.5)))
    save_grid(images, out, output_range, nrow=nrow)
    print(f"wrote {out} ({args.n} images)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
