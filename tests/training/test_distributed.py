"""torchrun + DDP on CPU (gloo): ranks stay identical and match the stated semantics.

One torchrun launch (2 gloo ranks) trains every case of the matrix a few steps: dcgan, wgan-gp
(the torch.func gradient penalty inside DDP), infogan (a third phase over G + D), wgan (the
clip hook after D's step, RMSprop) and dcgan with --compile (compiled losses inside the DDP
wrapper, BatchNorm buffers mutated by compiled code).
"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from helpers import REPO, tiny_mnist
from safetensors.torch import load_file

from gan_accel.data import BatchIterator
from gan_accel.training.trainer import Trainer
from gan_accel.variants import Batch, recipe_config

pytestmark = pytest.mark.slow  # one torchrun launch of 2 ranks over 5 cases: ~55 s
STEPS, WORLD, BATCH = 6, 2, 8
RANK_THREADS = 1  # each rank's OMP_NUM_THREADS; the emulation runs at the same count, since a
# convolution's float32 sums depend on how many threads split them, and Adam's g/|g| turns
# those last-bit differences into whole steps within a few updates
CASES = ["dcgan", "wgan-gp", "infogan", "wgan", "dcgan+compile"]
EAGER = [c for c in CASES if "+" not in c]
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    tiny_mnist(root / "data", n=WORLD * BATCH * STEPS, seed=5)  # one epoch of STEPS steps
    env = {**os.environ, "OMP_NUM_THREADS": str(RANK_THREADS)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={WORLD}", str(REPO / "tests" / "training" / "ddp_worker.py"),
           str(root / "data"), str(root), str(STEPS), *CASES]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def ranks(root, case):
    tensors = [load_file(str(root / case / f"rank{r}.safetensors")) for r in range(WORLD)]
    facts = [json.loads((root / case / f"rank{r}.json").read_text()) for r in range(WORLD)]
    return tensors, facts


def emulate_two_ranks(data: str, out: str, model: str) -> dict:
    """What a 2-process run must compute, in one process.

    Per phase: each rank r computes its loss on its own shard (BatchIterator rank r of 2) with
    its own noise (seeded from seed, r, step) and its own global torch generator (WGAN-GP's
    mixing weights; seeded alike on every rank) starting from rank 0's buffers (DDP's
    broadcast_buffers); the update uses the average of the two ranks' gradients; afterwards
    every rank holds rank 0's buffers.
    """
    cfg = recipe_config(model, "paper", dataset="mnist", data_dir=data, batch_size=BATCH,
                             max_steps=STEPS, out=out, progress=False, device="cpu",
                             plateau_factor=1.0)
    torch.set_num_threads(RANK_THREADS)  # restored after the test by conftest
    t = Trainer(cfg, log=lambda *_: None)
    x, y = t.loader.x, t.loader.y
    shards = [list(BatchIterator(x, y, BATCH, cfg.seed, r, WORLD).epoch(0)) for r in range(WORLD)]
    buffers = dict(t.variant.named_buffers())
    rng = [torch.get_rng_state() for _ in range(WORLD)]
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
                torch.set_rng_state(rng[r])
                loss, _ = ph.loss(Batch(real, labels, latent))
                rng[r] = torch.get_rng_state()
                loss.backward()
                grads.append([None if p.grad is None else p.grad.clone() for p in ph.params])
                if r == 0:
                    rank0_after = {k: v.clone() for k, v in buffers.items()}
            for k, v in rank0_after.items():
                buffers[k].copy_(v)
            for p, g0, g1 in zip(ph.params, *grads, strict=True):  # None: unused by the phase
                p.grad = None if g0 is None else g0 / WORLD + g1 / WORLD
            t.optims[ph.name].step()
            if ph.after is not None:
                ph.after()
    return t.variant.state_dict()


@pytest.mark.parametrize("case", CASES)
def test_ranks_hold_identical_parameters_and_optimizer_state(ddp_run, case):
    """Parameters, spectral-norm vectors, every optimizer's moments and step counts: bitwise
    identical on both ranks; every phase stepped as often as its schedule says."""
    (r0, r1), (f0, f1) = ranks(ddp_run, case)
    assert r0.keys() == r1.keys()
    recipe = recipe_config(case.partition("+")[0], "paper")
    trained = [k for k in r0 if k.startswith(("model.", "optim.")) and not k.endswith(BN_STATS)]
    assert any(k.startswith("optim.") for k in trained)
    assert any(k.endswith("_u") for k in trained) == recipe.spectral_norm
    for k in trained:
        assert torch.equal(r0[k], r1[k]), k
    assert f0["optimizer_steps"] == f1["optimizer_steps"]
    for phase, steps in f0["optimizer_steps"].items():
        assert steps == [STEPS if phase != "G" else math.ceil(STEPS / recipe.n_critic)], phase


@pytest.mark.parametrize("case", CASES)
def test_ranks_hold_identical_buffers(ddp_run, case):
    (r0, r1), _ = ranks(ddp_run, case)
    differ = [k for k in r0 if not torch.equal(r0[k], r1[k])]
    assert not differ, differ


@pytest.mark.parametrize("model", EAGER)
def test_two_ranks_match_the_stated_semantics(ddp_run, tmp_path, model):
    (r0, _), _ = ranks(ddp_run, model)
    expected = emulate_two_ranks(str(ddp_run / "data"), str(tmp_path / "emu"), model)
    for k, v in expected.items():  # allreduce vs g0/2 + g1/2: float32 rounding, which Adam's
        torch.testing.assert_close(r0["model." + k], v, rtol=1e-5, atol=1e-5,  # g/|g| amplifies
                                   msg=lambda m, k=k: f"{k}: {m}")
    assert (ddp_run / model / "run" / "checkpoints").is_dir()  # rank 0 wrote


def test_wgan_clip_hook_runs_on_every_rank(ddp_run):
    (r0, r1), _ = ranks(ddp_run, "wgan")
    clip = recipe_config("wgan", "paper").clip_value
    critic = [k for k in r0 if k.startswith("model.D.") and not k.endswith(BN_STATS)]
    assert critic
    for r in (r0, r1):
        assert max(float(r[k].abs().max()) for k in critic) <= clip


def test_compile_under_ddp_builds_one_graph_per_phase(ddp_run):
    _, facts = ranks(ddp_run, "dcgan+compile")
    for f in facts:
        assert all(n >= 1 for n in f["compiled_entries"].values()), f
        assert f["unique_graphs"] >= len(f["compiled_entries"]), f
    _, eager = ranks(ddp_run, "dcgan")
    assert eager[0]["unique_graphs"] == 0 and not any(eager[0]["compiled_entries"].values())
