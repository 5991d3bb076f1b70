"""The random streams of a training run, each a fixed function of ``--seed``.

Every stream has its own generator seeded by a rule below, so a resumed run (which knows only
the seed and its position) and every rank of a distributed run draw exactly what an
uninterrupted one-process run draws. The multipliers and offsets are primes, so the streams
of small seeds never share a seed.
"""

from __future__ import annotations

STEP_STRIDE = 1_000_003  # per seed, in the per-step noise stream
RANK_STRIDE = 7_919  # per rank, in the per-step noise stream
SAMPLE_GRID_OFFSET = 7_919  # the fixed latent of every sample grid
VBN_BATCH_OFFSET = 104_729  # virtual batch norm's fixed batch of latents
EPOCH_STRIDE = 100_003  # per seed, in the data-order stream


def step_noise_seed(seed: int, rank: int, step: int) -> int:
    """The seed of step ``step``'s noise on ``rank``: latents and augmentation draws."""
    return seed * STEP_STRIDE + rank * RANK_STRIDE + step + 1


def sample_grid_seed(seed: int) -> int:
    """The seed of the latent every sample grid of a run is drawn from."""
    return seed + SAMPLE_GRID_OFFSET


def vbn_batch_seed(seed: int) -> int:
    """The seed of virtual batch norm's fixed batch of latents."""
    return seed + VBN_BATCH_OFFSET


def epoch_order_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s data permutation."""
    return seed * EPOCH_STRIDE + epoch
