"""``python -m gan_accel.sample --onnx FILE`` / ``--pt2 FILE``: grids from an exported model.

The latent is drawn with torch exactly as ``--checkpoint`` draws it (same seed, same order),
so a grid from the .onnx or .pt2 file matches the grid from the checkpoint it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError
from .runtime import CPU, CUDA, ModelFileError, OnnxGenerator

if TYPE_CHECKING:  # torch loads in the grid functions: bulk sampling from ONNX never needs it
    import torch


def onnx_providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device == "cpu":
        return [CPU]
    if device.startswith("cuda"):
        if CUDA not in ort.get_available_providers():
            raise UserError(f"--device {device}: this onnxruntime has no CUDA provider; "
                            "install onnxruntime-gpu or use --device cpu")
        return [CUDA, CPU]
    raise UserError(f"--device {device} is not cpu or cuda")


def check_label(spec, label: int) -> None:
    """``--label`` against the generator's classes (:meth:`LatentSpec.check_class`)."""
    try:
        spec.check_class(label, "--label")
    except ValueError as exc:
        raise UserError(str(exc)) from None


def sample_onnx_grid(args) -> tuple[torch.Tensor, str]:
    """Images [args.n, C, H, W] (torch, float32) from ``args.onnx`` and its output range."""
    import torch

    for flag in ("best", "ema"):
        if getattr(args, flag, False):
            raise UserError(f"--{flag} applies to --checkpoint; an .onnx file holds the weights "
                            "chosen at export (gan_accel.export --best/--ema)")
    try:
        gen = OnnxGenerator(args.onnx, providers=onnx_providers(args.device))
    except ModelFileError as exc:
        raise UserError(str(exc)) from None
    spec = gen.meta.latent
    kw = {}
    if args.label is not None:
        check_label(spec, args.label)
        kw = spec.class_kwargs(torch.full((args.n,), args.label, dtype=torch.long))
    latent = spec.sample(args.n, "cpu", torch.Generator().manual_seed(args.seed), **kw)
    try:
        images = gen.run(**{k: v.numpy() for k, v in latent.items()})
    except ValueError as exc:
        raise UserError(f"{args.onnx}: {exc}") from None
    return torch.from_numpy(images), gen.output_range


def sample_pt2_grid(args) -> tuple[torch.Tensor, str]:
    """Images [args.n, C, H, W] (torch, float32) from the AOTInductor package ``args.pt2``."""
    import torch

    from .aoti import Pt2Generator

    for flag in ("best", "ema"):
        if getattr(args, flag, False):
            raise UserError(f"--{flag} applies to --checkpoint; a .pt2 package holds the "
                            "weights chosen at export")
    try:
        gen = Pt2Generator(args.pt2)
    except ModelFileError as exc:
        raise UserError(str(exc)) from None
    spec = gen.meta.latent
    kw = {}
    if args.label is not None:
        check_label(spec, args.label)
        kw = spec.class_kwargs(torch.full((args.n,), args.label, dtype=torch.long))
    latent = spec.sample(args.n, "cpu", torch.Generator().manual_seed(args.seed), **kw)
    images = gen.run_tensors(**{k: v.to(gen.device) for k, v in latent.items()})
    return images.float().cpu(), gen.output_range
