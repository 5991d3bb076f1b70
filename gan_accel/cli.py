"""``gan-accel <command> ...``: one console entry for every CLI of the toolkit."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("gan_accel.train", "train a GAN variant"),
    "sample": ("gan_accel.sample", "write sample grids from a checkpoint or ONNX file"),
    "export": ("gan_accel.export", "export a trained generator to ONNX"),
    "evaluate": ("gan_accel.evaluate", "measure sample quality (FID, KID, coverage)"),
    "bench": ("bench.__main__", "benchmark eager vs compiled vs ONNX, kernels, training"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items()]
        print("usage: gan-accel <command> [options]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"gan-accel: error: unknown command {argv[0]!r} (see --help)", file=sys.stderr)
            return 2
        return 0
    from .errors import run_cli

    module = importlib.import_module(COMMANDS[argv[0]][0])
    return run_cli(module.main, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
