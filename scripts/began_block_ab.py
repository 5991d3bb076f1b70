"""Eager vs compiled on a block with the layers of began's autoencoder D, in one process.

Conv encoder -> FC to 12,544 features -> BatchNorm1d -> ReLU -> transposed conv -> L1
reconstruction error; D is applied to two batches (as a D loss does with real and fake),
forward and backward. Alternating timed blocks, so both modes see the same load. Prints the
best and median ms per step, minor page faults per step and the load average.

    OMP_NUM_THREADS=2 python scripts/began_block_ab.py --threads 2 [--one-batch]
        [--options '{"cpp.max_horizontal_fusion_size": 1}']
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--one-batch", action="store_true", help="D on one batch, not two")
    p.add_argument("--options", default="{}", help="extra Inductor options (JSON)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(12544, 32, bias=False))
    dec = nn.Sequential(nn.Linear(32, 12544, bias=False), nn.BatchNorm1d(12544), nn.ReLU())
    up = nn.Sequential(nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    x, x2 = torch.randn(64, 1, 28, 28), torch.randn(64, 1, 28, 28)

    def D(images):
        h = dec(enc(images)).view(images.shape[0], 64, 14, 14)
        return (up(h) - images).abs().flatten(1).mean(1)

    def loss(a, b):
        return D(a).mean() if args.one_batch else D(a).mean() - 0.5 * D(b).mean()

    options = {"layout_optimization": False, **json.loads(args.options)}
    compiled = torch.compile(loss, fullgraph=True, options=options)
    times, faults = {"eager": [], "compiled": []}, {"eager": [], "compiled": []}

    def block(name, fn, n=5):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        for _ in range(n):
            fn(x, x2).backward()
        times[name].append((time.perf_counter() - t0) / n * 1e3)
        faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n)

    block("compiled", compiled, 2)  # compiles
    block("eager", loss, 2)
    for k in times:
        times[k].clear()
        faults[k].clear()
    for r in range(args.rounds):
        order = [("eager", loss), ("compiled", compiled)]
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            block(name, fn)
    print(json.dumps({
        "threads": args.threads, "one_batch": args.one_batch, "options": options,
        **{f"{k}_min_ms": round(min(v), 2) for k, v in times.items()},
        **{f"{k}_median_ms": round(statistics.median(v), 2) for k, v in times.items()},
        "minor_faults_per_step": {k: min(v) for k, v in faults.items()},
        "load": open("/proc/loadavg").read().split()[:3]}))


if __name__ == "__main__":
    main()
