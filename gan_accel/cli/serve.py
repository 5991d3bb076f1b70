"""``gan-accel serve MODEL`` / ``python -m gan_accel.serve MODEL``: an HTTP sampler.

    python -m gan_accel.serve dcgan.onnx --port 8000             # POST /generate, GET /metadata
    python -m gan_accel.serve runs/dcgan                           # a run: exported first (temp)
    python -m gan_accel.serve dcgan.onnx --web playground/         # also serve the page

Every problem knowable before the server starts (a missing model, a port in use, a bad
limit, LitServe not installed) is one line and exit code 2. The work is in
:mod:`gan_accel.export.serving`.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import tempfile
from pathlib import Path

from ..errors import OneLineParser, UserError, run_cli

DEFAULTS = {"port": 8000, "max_batch_size": 16, "batch_timeout_ms": 0.0, "max_images": 256,
            "max_queue": 256, "max_body_bytes": 1 << 20, "workers": 1, "api_servers": 1}


def build_parser() -> OneLineParser:
    d = DEFAULTS
    p = OneLineParser(prog="gan_accel.serve",
                      description="Serve an exported generator over HTTP: POST /generate "
                                  "(PNG or uint8 .npz), GET /metadata, GET /health; requests "
                                  "arriving together run as one generator call (LitServe).")
    p.add_argument("model", metavar="MODEL",
                   help="an exported .onnx generator, or a run directory (its last checkpoint "
                        "is exported to a temporary folder first)")
    p.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "0.0.0.0", "::"),
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 "
                        "or :: opens it to the network)")
    p.add_argument("--port", type=int, default=d["port"],
                   help=f"port, 1024..65535 (default: {d['port']})")
    p.add_argument("--max-batch-size", type=int, default=d["max_batch_size"], metavar="R",
                   help="requests merged into one generator call; 1 turns batching off "
                        f"(default: {d['max_batch_size']})")
    p.add_argument("--batch-timeout-ms", type=float, default=d["batch_timeout_ms"],
                   metavar="MS", help="how long a batch waits for more requests; 0 takes the "
                                      "requests already queued, adding no latency (default: "
                                      f"{d['batch_timeout_ms']:g})")
    p.add_argument("--max-images", type=int, default=d["max_images"], metavar="N",
                   help=f"images one request may ask for (default: {d['max_images']})")
    p.add_argument("--max-queue", type=int, default=d["max_queue"], metavar="N",
                   help="requests waiting or running at once; past it, 503 at once "
                        f"(default: {d['max_queue']})")
    p.add_argument("--max-body-bytes", type=int, default=d["max_body_bytes"], metavar="B",
                   help=f"largest request body (default: {d['max_body_bytes']:,})")
    p.add_argument("--workers", type=int, default=d["workers"],
                   help="inference worker processes, each with its own engine (default: "
                        f"{d['workers']})")
    p.add_argument("--api-servers", type=int, default=d["api_servers"], metavar="N",
                   help="HTTP server processes sharing the port (default: "
                        f"{d['api_servers']})")
    p.add_argument("--threads", type=int, default=None,
                   help="engine CPU threads per worker (default: the CPUs this process may "
                        "use)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--web", metavar="DIR", default=None,
                   help="also serve the files under DIR at / (the page written by "
                        "`gan-accel export --web DIR`); nothing outside DIR is served")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="with a run directory: export its EMA generator (default: when the run "
                        "kept one) or, with --no-ema, the trained G")
    p.add_argument("--log-level", default="warning",
                   choices=("debug", "info", "warning", "error"),
                   help="server log level (default: warning)")
    return p


def check_port(host: str, port: int) -> None:
    """UserError unless ``port`` can be bound on ``host`` now (as uvicorn binds it)."""
    if not 1024 <= port <= 65535:
        raise UserError(f"--port {port} is outside 1024..65535; pick another")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is in use; stop what listens there or "
                                "pass another --port") from None
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def _config(args):
    from ..export.grid import onnx_providers
    from ..export.serving.requests import Limits
    from ..export.serving.server import ServeConfig

    for flag in ("max_batch_size", "max_images", "max_queue", "max_body_bytes", "workers",
                 "api_servers"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    if not 0 <= args.batch_timeout_ms <= 1000:
        raise UserError(f"--batch-timeout-ms must be 0..1000, got {args.batch_timeout_ms:g}")
    web = None
    if args.web is not None:
        web = Path(args.web).resolve()
        if not web.is_dir():
            raise UserError(f"--web {args.web} is not a folder; write the page first with "
                            "`gan-accel export --onnx MODEL --web DIR`")
    check_port(args.host, args.port)
    return ServeConfig(
        host=args.host, port=args.port, max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        limits=Limits(max_images=args.max_images, max_body_bytes=args.max_body_bytes,
                      max_queue=args.max_queue),
        workers=args.workers, api_servers=args.api_servers, threads=args.threads,
        providers=tuple(onnx_providers(args.device)), web_dir=web, log_level=args.log_level)


def _require_litserve() -> None:
    try:
        import litserve  # noqa: F401
    except ImportError:
        raise UserError("serving needs LitServe: pip install \"gan-accel[serve]\"") from None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _require_litserve()
    from ..export.card import describe_model
    from ..export.runtime import ModelFileError
    from ..export.serving.server import run_server

    model = Path(args.model)
    if not model.exists():
        raise UserError(f"MODEL {model} does not exist; pass an exported .onnx file or a run "
                        "directory")
    if model.is_file() and args.ema is not None:
        raise UserError("--ema / --no-ema apply to a run directory; an .onnx file holds the "
                        "weights chosen at export")
    config = _config(args)
    with tempfile.TemporaryDirectory(prefix="gan-accel-serve-") as tmp:
        if model.is_dir():
            model = _export_run(model, Path(tmp), args.ema)
        try:
            card = describe_model(model, config.providers)
        except ModelFileError as exc:
            raise UserError(str(exc)) from None
        run_server(model, config, card)
    return 0


def _export_run(run: Path, folder: Path, ema: bool | None) -> Path:
    """The run's last checkpoint exported to ``folder/<run>.onnx`` (validated, fp32)."""
    from ..export.onnx_export import export_checkpoint

    out = folder / f"{run.resolve().name or 'model'}.onnx"
    report = export_checkpoint(str(run), out, ema=ema)
    print(f"exported {run} (step {report['metadata']['step']}) to a temporary {out.name}",
          flush=True)
    return out


if __name__ == "__main__":
    sys.exit(run_cli(main))
