"""The HTTP sampler under load: ``python -m gan_accel.bench serve``.

For the fp32 and the int8 ONNX export (``--checkpoint RUN``: that run's generator, else
``--model``'s nets with random weights), in one run:

* **engine**: the generator alone through :class:`OnnxGenerator` (numpy in and out, as
  ``bench inference`` times it) at batch 1 and batch 64, before and after the load runs;
* **load**: ``gan-accel serve`` on 127.0.0.1 with batching on (``--max-batch-size 16``) and
  off (``1``), driven by Debian's ``hey`` at concurrency 1, 16 and 64 with single-image PNG
  requests, then at 64 images per request as uint8 ``.npz``; each run a fixed count of
  requests (``--requests``), so sent and answered can be compared;
* **overload**: ``--max-queue 32`` and concurrency 128: every request is answered 2xx or 503.

Rows: requests/s, images/s, p50/p99 latency, status counts, errors (requests hey sent that got
no HTTP answer). The targets (see ``targets``) are judged from this run's rows only.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import REPO, Context, Result, quantile, time_fn

CONCURRENCY = (1, 16, 64)
BATCHED, UNBATCHED = 16, 1  # --max-batch-size with batching on / off
BIG_N = 64  # images per request in the .npz rows
OVERLOAD_QUEUE, OVERLOAD_CONCURRENCY = 32, 128
START_TIMEOUT_S = 120
HEY_TIMEOUT_S = 20  # hey's per-request timeout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("serve suite")
    g.add_argument("--requests", type=int, default=None, metavar="N",
                   help="requests per load run at concurrency 16 and 64 (default: 3200; "
                        "concurrency 1 and the 64-image runs send a quarter; --quick: 256)")
    g.add_argument("--serve-engines", default="fp32,int8", metavar="NAME,...",
                   help="exports to serve: fp32, int8 (default: both)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m gan_accel.serve MODEL`` on 127.0.0.1, from a temporary working folder."""

    def __init__(self, model: Path, threads: int, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd = tempfile.mkdtemp(prefix="gan-accel-bench-serve-")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gan_accel.serve", str(model), "--port", str(self.port),
             "--threads", str(threads), *args], cwd=self.cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stdout.read()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("the server did not become ready")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        shutil.rmtree(self.cwd, ignore_errors=True)


def hey(url: str, body: dict, requests: int, concurrency: int) -> dict:
    """``requests`` POSTs of ``body`` at ``concurrency`` with hey; what came back."""
    requests -= requests % concurrency  # hey sends n rounded down to a multiple of c
    cmd = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST", "-T",
           "application/json", "-d", json.dumps(body), "-t", str(HEY_TIMEOUT_S), "-o", "csv",
           url + "/generate"]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=HEY_TIMEOUT_S * requests / concurrency + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"hey failed: {proc.stderr.strip()[-500:]}")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    lat = [float(r["response-time"]) * 1e3 for r in rows]
    ends = [float(r["offset"]) + float(r["response-time"]) for r in rows]
    codes: dict[str, int] = {}
    for r in rows:
        codes[r["status-code"]] = codes.get(r["status-code"], 0) + 1
    wall = max(ends) if ends else None
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    return {"requests": requests, "answered": len(rows), "errors": requests - len(rows),
            "codes": codes, "ok": ok, "wall_s": round(wall, 3) if wall else None,
            "requests_per_s": round(len(rows) / wall, 1) if wall else None,
            "ok_per_s": round(ok / wall, 1) if wall else None,
            "p50_ms": round(quantile(lat, 0.5), 3) if lat else None,
            "p99_ms": round(quantile(lat, 0.99), 3) if lat else None}


def _models(args, ctx: Context, folder: Path, names: list[str], log) -> dict[str, Path]:
    import torch
    from gan_accel.export.onnx_export import export_generator

    from .inference import build_generator

    variant, _ = build_generator(args.model, torch.device("cpu"), args.checkpoint)
    out = {}
    if "fp32" in names:
        export_generator(variant, folder / "fp32.onnx", validate=False)
        out["fp32"] = folder / "fp32.onnx"
    if "int8" in names:
        from gan_accel.export.quantize import quantize_generator

        report = quantize_generator(variant, folder / "int8.onnx", threads=ctx.threads)
        log(f"serve: int8 export passed its gate (agreement {report['gate']['agreement']:.2%})")
        out["int8"] = folder / "int8.onnx"
    return out


def _engine_rows(name: str, model: Path, ctx: Context, when: str) -> list[dict]:
    """The engine alone at batch 1 and 64; ``when``: before or after the load runs (the
    targets use the mean of both: the machine's load drifts over the minutes between)."""
    from gan_accel.export.runtime import OnnxGenerator

    gen = OnnxGenerator(model, threads=ctx.threads, save_optimized=False)
    rows = []
    for batch in (1, BIG_N):
        feeds = gen.latent(batch, seed=0)
        gen.run(**feeds)
        t = time_fn(lambda f=feeds: gen.run(**f), ctx.device, ctx.threads, ctx.budget,
                    host=True)
        rows.append({"engine": name, "mode": f"engine alone ({when})", "batch": batch,
                     "p50_ms": round(t.p50_ms, 4), "p20_ms": round(t.p20_ms, 4),
                     "p80_ms": round(t.p80_ms, 4),
                     "images_per_s": round(batch / (t.p50_ms / 1e3), 1), "status": "ok"})
    gen.close()
    return rows


def _load_rows(name: str, model: Path, batching: bool, ctx: Context, n_requests: int,
               log) -> list[dict]:
    mode = "batching" if batching else "no batching"
    args = ["--max-batch-size", str(BATCHED if batching else UNBATCHED),
            "--max-images", str(BIG_N)]
    rows = []
    with Server(model, ctx.threads, *args) as server:
        hey(server.url, {"seed": 0}, min(200, n_requests), 4)  # warm-up, not recorded
        runs = [(c, 1, n_requests if c > 1 else n_requests // 4) for c in CONCURRENCY]
        runs += [(1, BIG_N, n_requests // 8), (16, BIG_N, n_requests // 4)]
        for concurrency, n, count in runs:
            body = {"seed": 0, "n": n, "format": "npz" if n > 1 else "png"}
            got = hey(server.url, body, max(count, concurrency), concurrency)
            row = {"engine": name, "mode": mode, "concurrency": concurrency,
                   "images_per_request": n, "format": body["format"], **got,
                   "images_per_s": round(got["ok_per_s"] * n, 1) if got["ok_per_s"] else None}
            row["status"] = "ok" if got["ok"] == got["requests"] else "lost or refused"
            rows.append(row)
            log(f"  {name:<4} {mode:<11} c={concurrency:<3} n={n:<3} "
                f"{got['requests_per_s']} req/s, p50 {got['p50_ms']} ms, p99 {got['p99_ms']} "
                f"ms, status {got['codes']}, errors {got['errors']}")
    return rows


def _overload_row(name: str, model: Path, ctx: Context, n_requests: int, log) -> dict:
    with Server(model, ctx.threads, "--max-queue", str(OVERLOAD_QUEUE)) as server:
        got = hey(server.url, {"seed": 0}, max(n_requests, OVERLOAD_CONCURRENCY),
                  OVERLOAD_CONCURRENCY)
    refused = got["codes"].get("503", 0)
    answered_as_promised = got["ok"] + refused == got["requests"]
    log(f"  {name:<4} overload    c={OVERLOAD_CONCURRENCY} queue {OVERLOAD_QUEUE}: status "
        f"{got['codes']}, errors {got['errors']}")
    return {"engine": name, "mode": f"overload (--max-queue {OVERLOAD_QUEUE})",
            "concurrency": OVERLOAD_CONCURRENCY, "images_per_request": 1, "format": "png",
            **got, "refused_503": refused,
            "status": "ok" if answered_as_promised else "lost"}


def run(args: argparse.Namespace, ctx: Context) -> Result:
    from gan_accel.errors import UserError

    if shutil.which("hey") is None:
        raise UserError("bench serve drives the server with hey: apt-get install hey")
    try:
        import litserve  # noqa: F401
    except ImportError:
        raise UserError("bench serve needs the server: pip install \"gan-accel[serve]\"") \
            from None
    names = [n.strip() for n in args.serve_engines.split(",") if n.strip()]
    if not names or set(names) - {"fp32", "int8"}:
        raise UserError(f"--serve-engines {args.serve_engines!r}: choose from fp32, int8")
    n_requests = args.requests or (256 if ctx.quick else 3200)
    if n_requests < 64:
        raise UserError(f"--requests must be >= 64, got {n_requests}")
    log = ctx.log
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gan-accel-bench-serve-") as tmp:
        models = _models(args, ctx, Path(tmp), names, log)
        for name, model in models.items():
            rows += _engine_rows(name, model, ctx, "before")
            for batching in (True, False):
                rows += _load_rows(name, model, batching, ctx, n_requests, log)
            rows += _engine_rows(name, model, ctx, "after")
            if name == names[0]:
                rows.append(_overload_row(name, model, ctx, n_requests, log))
    judged = targets(rows)
    config = {"model": args.model, "weights": args.checkpoint or "random (no --checkpoint)",
              "engines": names, "threads": ctx.threads, "requests": n_requests,
              "batched_max_batch_size": BATCHED, "batch_timeout_ms": 0.0,
              "load_tool": _hey_version(), "targets": judged}
    notes = [
        "load: hey on 127.0.0.1, a fixed count of requests per run (concurrency 1 and the "
        "64-image runs send fewer); requests/s = answered / wall time of the run; p50/p99 over "
        "every answered request; errors = requests without an HTTP answer",
        "engine alone: OnnxGenerator.run with numpy in and out (bench inference's ort-cpu "
        "rows), same threads, timed before and after the load runs; the targets use the mean",
        f"batching: --max-batch-size {BATCHED}, --batch-timeout-ms 0 (a batch takes the "
        "requests queued when the worker is free); no batching: --max-batch-size 1",
        "the server, hey and the engine share the machine's cores",
        *[f"target: {line}" for line in describe_targets(judged)],
    ]
    return Result("serve", config, rows, notes)


def _hey_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "hey"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"hey {out}".strip()


def _find(rows, **kw) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in kw.items())), None)


def _engine_mean(rows: list[dict], name: str, batch: int) -> dict | None:
    """The engine's p50 and images/s at ``batch``, mean of its before and after rows."""
    found = [r for r in rows if r["engine"] == name and r.get("batch") == batch
             and r["mode"].startswith("engine alone")]
    if not found:
        return None
    p50 = sum(r["p50_ms"] for r in found) / len(found)
    return {"p50_ms": round(p50, 4), "images_per_s": round(batch / (p50 / 1e3), 1)}


def targets(rows: list[dict]) -> dict:
    """The issue's targets from this run's rows, per engine."""
    out = {}
    for name in dict.fromkeys(r["engine"] for r in rows):
        on = _find(rows, engine=name, mode="batching", concurrency=16, images_per_request=1)
        off = _find(rows, engine=name, mode="no batching", concurrency=16,
                    images_per_request=1)
        c1 = _find(rows, engine=name, mode="batching", concurrency=1, images_per_request=1)
        big = [r for r in rows if r["engine"] == name and r.get("images_per_request") == BIG_N
               and r["mode"] == "batching"]
        b1, b64 = (_engine_mean(rows, name, batch) for batch in (1, BIG_N))
        load = [r for r in rows if r["engine"] == name and "requests" in r]
        entry = {}
        if on and off and on["ok_per_s"] and off["ok_per_s"]:
            entry["batching_speedup_c16"] = round(on["ok_per_s"] / off["ok_per_s"], 2)
            entry["batching_speedup_c16_met"] = entry["batching_speedup_c16"] >= 2.0
            entry["p99_c16_ms"] = on["p99_ms"]
            entry["p99_c16_met"] = on["p99_ms"] is not None and on["p99_ms"] <= 100
        if big and b64:
            best = max(big, key=lambda r: r["images_per_s"] or 0)
            entry["served_vs_engine_b64"] = round((best["images_per_s"] or 0)
                                                  / b64["images_per_s"], 3)
            entry["served_vs_engine_b64_at_concurrency"] = best["concurrency"]
            entry["served_vs_engine_b64_met"] = entry["served_vs_engine_b64"] >= 0.5
        if c1 and b1:
            bound = b1["p50_ms"] + 0.0 + 3.0  # engine + batch timeout (0) + 3 ms
            entry["c1_p50_ms"] = c1["p50_ms"]
            entry["c1_p50_bound_ms"] = round(bound, 3)
            entry["c1_p50_met"] = c1["p50_ms"] <= bound
        entry["nothing_lost"] = bool(load) and all(r["status"] == "ok" for r in load)
        out[name] = entry
    return out


def describe_targets(judged: dict) -> list[str]:
    lines = []
    for name, e in judged.items():
        def mark(key, e=e):
            return "met" if e.get(key) else "missed"

        if "batching_speedup_c16" in e:
            lines.append(f"{name}: batching at concurrency 16 = {e['batching_speedup_c16']}x "
                         f"requests/s without (>= 2x: {mark('batching_speedup_c16_met')}); p99 "
                         f"{e['p99_c16_ms']} ms (<= 100 ms: {mark('p99_c16_met')})")
        if "served_vs_engine_b64" in e:
            lines.append(f"{name}: {BIG_N} images per request served at "
                         f"{e['served_vs_engine_b64']:.0%} of the engine's batch-{BIG_N} "
                         f"images/s (>= 50%: {mark('served_vs_engine_b64_met')})")
        if "c1_p50_ms" in e:
            lines.append(f"{name}: single-image p50 at concurrency 1 {e['c1_p50_ms']} ms vs "
                         f"engine + batch timeout + 3 ms = {e['c1_p50_bound_ms']} ms "
                         f"({mark('c1_p50_met')})")
        lines.append(f"{name}: every request answered 2xx (or 503 past the queue limit): "
                     f"{'met' if e['nothing_lost'] else 'missed'}")
    return lines
