"""Build and run the HTTP sampler: LitServe, the request gate, the metadata route, the page.

Routes:

* ``POST /generate``: images (see :mod:`.requests` for the body, :mod:`.gate` for the limits).
* ``GET /metadata``: the model card (:func:`gan_accel.latent_apps.model_card`) and the limits.
* ``GET /health``: ``ok`` once the inference workers are ready (LitServe's).
* with ``web_dir``: the files under it (the playground written by ``export --web``), ``/``
  being its ``index.html``; nothing outside it (Starlette's ``StaticFiles`` resolves every
  path and refuses one that leaves the folder).

:func:`run_server` also owns shutdown: LitServe's ``run()`` stops its processes on
``KeyboardInterrupt`` but a SIGTERM to the main process would leave its workers serving, so
SIGTERM is turned into the same interrupt, and whatever child process is still alive after
``run()`` returns is stopped.
"""

from __future__ import annotations

import logging
import mimetypes
import multiprocessing as mp
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ...latent import LatentSpec
from .requests import Format, Limits

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds; loopback unless asked
GENERATE_PATH = "/generate"
METADATA_PATH = "/metadata"
STOP_WAIT_S = 5.0  # how long a child process may take to stop before it is killed


@dataclass(frozen=True)
class ServeConfig:
    """How the sampler serves: address, batching, limits, engine, the page folder."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 16  # requests per generator call; 1 turns batching off
    batch_timeout_ms: float = 0.0  # how long a batch waits to fill (0: takes what is queued)
    limits: Limits = field(default_factory=Limits)
    workers: int = 1  # inference worker processes, each with its own engine
    api_servers: int = 1  # HTTP processes (uvicorn) in front of them
    threads: int | None = None  # engine CPU threads per worker (None: all this process may use)
    providers: tuple[str, ...] | None = None  # onnxruntime providers (None: CUDA if there)
    web_dir: Path | None = None
    log_level: str = "warning"

    def __post_init__(self):
        if self.host not in HOSTS:
            raise ValueError(f"host must be one of {', '.join(HOSTS)}, got {self.host!r}")
        if not 1024 <= self.port <= 65535:
            raise ValueError(f"port must be 1024..65535, got {self.port}")
        if min(self.max_batch_size, self.workers, self.api_servers) < 1:
            raise ValueError("max_batch_size, workers and api_servers must be >= 1")
        if not 0 <= self.batch_timeout_ms <= 1000:
            raise ValueError(f"batch_timeout_ms must be 0..1000, got {self.batch_timeout_ms}")


def build_server(model: Path, config: ServeConfig, card: dict):
    """The LitServer with the gate, the metadata route and (with ``web_dir``) the page."""
    import litserve as ls
    from fastapi.responses import JSONResponse
    from starlette.middleware.gzip import GZipMiddleware

    from .api import GeneratorAPI
    from .gate import GenerateGate, shared_counter

    api = GeneratorAPI(str(model), list(config.providers) if config.providers else None,
                       config.threads, max_batch_size=config.max_batch_size,
                       batch_timeout=config.batch_timeout_ms / 1e3, api_path=GENERATE_PATH)
    spec = LatentSpec.from_meta(card["latent"])
    gate = (GenerateGate, {"path": GENERATE_PATH, "spec": spec, "limits": config.limits,
                           "in_flight": shared_counter()})
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=config.workers,
                          middlewares=[gate], disable_openapi_url=True, model_metadata=card)
    server.uvicorn_graceful_timeout = STOP_WAIT_S
    # PNG and .npz bodies barely compress (64 images: 55 KB -> 52 KB) and LitServe's gzip
    # (level 9, in the API process's event loop) halved the requests/s of 64-image requests
    # measured with hey: answer them as they are
    server.app.user_middleware = [m for m in server.app.user_middleware
                                  if m.cls is not GZipMiddleware]
    metadata = {**card, "limits": {"max_images": config.limits.max_images,
                                   "max_body_bytes": config.limits.max_body_bytes,
                                   "max_queue": config.limits.max_queue},
                "formats": [f.value for f in Format],
                "batching": {"max_batch_size": config.max_batch_size,
                             "batch_timeout_ms": config.batch_timeout_ms}}

    async def model_metadata() -> JSONResponse:
        return JSONResponse(metadata)

    server.app.add_api_route(METADATA_PATH, model_metadata, methods=["GET"])
    if config.web_dir is not None:
        mount_web(server.app, config.web_dir)
    return server


def mount_web(app, web_dir: Path) -> None:
    """Serve the files under ``web_dir`` at ``/`` (its ``index.html`` at ``/``)."""
    from starlette.staticfiles import StaticFiles

    # module scripts and streamed WebAssembly need these types, whatever the host's tables say
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    # LitServe answers GET / with a plain text line; the page takes its place
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != "/"]
    app.mount("/", StaticFiles(directory=str(web_dir), html=True, follow_symlink=False),
              name="web")


class _SigtermAsInterrupt:
    """SIGTERM handler: LitServe's shutdown path in the serving process. The API server
    processes fork with it installed; uvicorn re-raises the signal it caught once it has
    shut down, and there it only needs to end the process quietly."""

    def __init__(self):
        self.pid = os.getpid()

    def __call__(self, signum, frame):
        if os.getpid() != self.pid:
            raise SystemExit(0)
        raise KeyboardInterrupt


def stop_children(wait_s: float = STOP_WAIT_S) -> None:
    """Terminate, then kill, every child process still alive (workers, API servers, the
    queue manager) and wait for each."""
    children = mp.active_children()
    for p in children:
        p.terminate()
    for p in children:
        p.join(wait_s)
        if p.is_alive():
            p.kill()
            p.join(wait_s)


def run_server(model: Path, config: ServeConfig, card: dict, log=print) -> None:
    """Serve until SIGINT or SIGTERM; returns once every process it started has stopped."""
    server = build_server(model, config, card)
    logging.getLogger("litserve").setLevel(config.log_level.upper())
    # SIGINT may arrive ignored (a background job of a non-interactive shell): make Ctrl+C
    # and SIGTERM both take LitServe's KeyboardInterrupt path
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _SigtermAsInterrupt()),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    url = f"http://{'[::1]' if config.host == '::' else config.host}:{config.port}"
    log(f"serving {card['variant']} ({model.name}, {card['dtype']}) on {url}: POST "
        f"{GENERATE_PATH}, GET {METADATA_PATH}, GET /health"
        + (f"; the page in {config.web_dir} at {url}/" if config.web_dir else "")
        + f"; batching {config.max_batch_size} requests / {config.batch_timeout_ms:g} ms"
        + " (stop with Ctrl+C or SIGTERM)")
    sys.stdout.flush()
    try:
        server.run(host=config.host, port=config.port, num_api_servers=config.api_servers,
                   generate_client_file=False, log_level=config.log_level)
    except KeyboardInterrupt:
        pass
    finally:
        stop_children()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log("stopped")
