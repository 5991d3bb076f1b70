"""Worker processes for decoding and rendering images into a cache, one per core."""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed

POOL_MIN_ITEMS = 256  # fewer items are done in this process (a pool costs more than it saves)
CHUNK = 64  # items per task sent to a worker


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_count(items: int, workers: int | None = None) -> int:
    """``workers`` when given, else one per core (at most one per chunk) for many items and
    1 (this process) for few."""
    if workers is not None:
        return max(1, workers)
    if items < POOL_MIN_ITEMS:
        return 1
    return max(1, min(cores(), math.ceil(items / CHUNK)))


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes that import nothing new: forked where the OS can fork (the decoding
    code needs only Pillow and numpy), spawned elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def run_chunks(fn: Callable[..., list], chunks: list[list], args: tuple, workers: int,
               on_done: Callable[[list], object]) -> None:
    """``fn(chunk, *args)`` for every chunk, in ``workers`` processes (1: here); each result
    list goes to ``on_done`` as it arrives."""
    if workers <= 1:
        for chunk in chunks:
            on_done(fn(chunk, *args))
        return
    with worker_pool(workers) as pool:
        futures = [pool.submit(fn, chunk, *args) for chunk in chunks]
        for fut in as_completed(futures):
            on_done(fut.result())


def chunked(items: Iterable, size: int = CHUNK) -> list[list]:
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]
