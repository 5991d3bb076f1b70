"""The command lines: ``gan-accel <command> ...`` and ``python -m gan_accel.<command> ...``.

The top layer: it may import everything below it (``bench``, ``export``, the library,
``kernels``); nothing below imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..errors import run_cli


def _train() -> Callable:
    from .train import main

    return main


def _sample() -> Callable:
    from .sample import main

    return main


def _export() -> Callable:
    from .export import main

    return main


def _evaluate() -> Callable:
    from .evaluate import main

    return main


def _serve() -> Callable:
    from .serve import main

    return main


def _bench() -> Callable:
    from ..bench.__main__ import main

    return main


COMMANDS: dict[str, tuple[Callable[[], Callable], str]] = {
    "train": (_train, "train a GAN variant"),
    "sample": (_sample, "write sample grids or bulk samples from a checkpoint or exported model"),
    "export": (_export, "export a trained generator (ONNX, int8 ONNX, AOTInductor .pt2)"),
    "evaluate": (_evaluate, "measure sample quality (FID, KID, coverage)"),
    "serve": (_serve, "serve an exported generator over HTTP (POST /generate), with its page"),
    "bench": (_bench, "benchmark eager vs compiled vs exported, kernels, training, quality"),
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
    return run_cli(COMMANDS[argv[0]][0](), argv[1:])
