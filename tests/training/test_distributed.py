"""torchrun + DDP on CPU (gloo): ranks stay identical and match the stated semantics."""

import os
import subprocess
import sys

import pytest
import torch
from helpers import REPO, tiny_mnist
from safetensors.torch import load_file

from gan_accel.config import TrainConfig
from gan_accel.data import BatchIterator
from gan_accel.training.trainer import Trainer
from gan_accel.variants import Batch

STEPS, WORLD, BATCH = 3, 2, 8


def emulate_two_ranks(data: str, out: str, model: str) -> dict:
    """What a 2-process run must compute, in one process.

    Per phase: each rank r computes its loss on its own shard (BatchIterator rank r of 2) with
    its own noise (seeded from seed, r, step) starting from rank 0's buffers (DDP's
    broadcast_buffers); the update uses the average of the two ranks' gradients; afterwards
    every rank holds rank 0's buffers.
    """
    cfg = TrainConfig.preset(model, dataset="mnist", data_dir=data, batch_size=BATCH,
                             max_steps=STEPS, out=out, progress=False, device="cpu",
                             plateau_factor=1.0)
    t = Trainer(cfg, log=lambda *_: None)
    x, y = t.loader.x, t.loader.y
    shards = [list(BatchIterator(x, y, BATCH, cfg.seed, r, WORLD).epoch(0)) for r in range(WORLD)]
    buffers = dict(t.variant.named_buffers())
    for step in range(STEPS):
        gens = [torch.Generator().manual_seed(cfg.seed * 1_000_003 + r * 7_919 + step + 1)
                for r in range(WORLD)]
        for ph in t.phases:
            if step % ph.every:
                continue
            start = {k: v.clone() for k, v in buffers.items()}
            grads, rank0_after = [], None
            for r in range(WORLD):
                for k, v in start.items():
                    buffers[k].copy_(v)
                real, labels = shards[r][step]
                latent = t.variant.latent.sample(BATCH, "cpu", gens[r])
                for p in t.variant.parameters():
                    p.grad = None
                loss, _ = ph.loss(Batch(real, labels, latent))
                loss.backward()
                grads.append([p.grad.clone() for p in ph.params])
                if r == 0:
                    rank0_after = {k: v.clone() for k, v in buffers.items()}
            for k, v in rank0_after.items():
                buffers[k].copy_(v)
            for p, g0, g1 in zip(ph.params, *grads, strict=True):
                p.grad = g0 / WORLD + g1 / WORLD
            t.optims[ph.name].step()
            if ph.after is not None:
                ph.after()
    return t.variant.state_dict()


@pytest.mark.parametrize("model", ["dcgan"])
def test_two_gloo_ranks_stay_identical_and_match_semantics(tmp_path, model):
    data = tmp_path / "data"
    tiny_mnist(data, n=64, seed=5)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={WORLD}", str(REPO / "tests" / "training" / "ddp_worker.py"),
           str(data), str(tmp_path), model, str(STEPS)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    params = {k for k in r0 if "running_" not in k and "num_batches" not in k
              and not k.endswith(("_u", "_v"))}
    for k in params:  # parameters: bitwise identical across ranks
        assert torch.equal(r0[k], r1[k]), k
    expected = emulate_two_ranks(str(data), str(tmp_path / "emu"), model)
    for k, v in expected.items():  # DDP sums g/2 over ranks: allow float32 rounding only
        torch.testing.assert_close(r0[k], v, rtol=1e-5, atol=1e-6, msg=k)
    assert (tmp_path / "run" / "checkpoints").is_dir()  # rank 0 wrote
