"""The model call behind ``POST /generate``: a LitServe ``LitAPI`` around :class:`OnnxGenerator`.

LitServe owns the HTTP side and the batching (``max_batch_size`` requests, waiting at most
``batch_timeout`` s to fill a batch; :class:`WaitingBatchedLoop` only makes an idle worker
sleep instead of polling); this class decodes one checked request into latents,
runs every request of a batch as one generator call (their rows concatenated), splits the
images back per request and encodes each response. The generator runs each image
independently of the other rows of its call, so a request's pixels do not depend on what it
was batched with (asserted bitwise in ``tests/serve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from queue import Empty

import litserve as ls
import numpy as np
from fastapi import Response
from litserve.loops import BatchedLoop
from litserve.loops.base import collate_requests

from ..runtime import OnnxGenerator
from .encode import encode, feeds_for
from .requests import Format

IDLE_WAIT_S = 1.0  # how long a worker sleeps on an empty queue before it looks again


class _FirstThenQueue:
    """The request queue with one request already taken from it handed out first."""

    def __init__(self, first, queue):
        self.first, self.queue = [first], queue

    def get_nowait(self):
        return self.first.pop() if self.first else self.queue.get_nowait()

    def get(self, block: bool = True, timeout: float | None = None):
        return self.first.pop() if self.first else self.queue.get(block, timeout)


class WaitingBatchedLoop(BatchedLoop):
    """LitServe's batched loop and its own collation, with a worker that sleeps while no
    request is queued.

    LitServe's collation either polls the queue without pause (``batch_timeout=0``: measured
    here, an idle server then kept ~90% of a core busy between the worker and the queue's
    manager process) or holds every batch for the whole ``batch_timeout``, a single request
    too. This loop blocks for the first request, then lets LitServe collect the batch as it
    would: with ``batch_timeout=0`` whatever else is queued by then (no added latency, and
    under load the requests that arrived during the previous call), else up to
    ``max_batch_size`` requests within ``batch_timeout``.
    """

    def get_batch_requests(self, lit_api, request_queue, transport):
        try:
            first = request_queue.get(timeout=IDLE_WAIT_S)
        except Empty:
            return [], []
        return collate_requests(self, lit_api, _FirstThenQueue(first, request_queue),
                                transport)


@dataclass
class Decoded:
    """One request on its way through a batch."""

    request: dict
    feeds: dict[str, np.ndarray]  # its generator inputs, ``n`` rows each
    images: np.ndarray | None = None  # [n, C, H, W] once generated
    batch_requests: int = 0  # requests in the generator call that made them


class GeneratorAPI(ls.LitAPI):
    """LitAPI serving an exported generator.

    Args:
        model: the .onnx file.
        providers: onnxruntime providers (None: CUDA when available, else CPU).
        threads: CPU threads of the engine (None: the CPUs this process may use).
        max_batch_size: requests merged into one generator call (1: no batching).
        batch_timeout: seconds a batch waits to fill.
        api_path: the route, ``/generate``.
    """

    def __init__(self, model: str, providers: list[str] | None = None,
                 threads: int | None = None, *, max_batch_size: int = 16,
                 batch_timeout: float = 0.0, api_path: str = "/generate"):
        loop = WaitingBatchedLoop() if max_batch_size > 1 else "auto"
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout,
                         api_path=api_path, loop=loop)
        self.model, self.providers, self.threads = model, providers, threads

    def setup(self, device) -> None:
        # save_optimized=False: serving writes nothing, not even beside the model
        self.gen = OnnxGenerator(self.model, providers=self.providers, threads=self.threads,
                                 save_optimized=False)
        self.spec = self.gen.meta.latent
        self.gen.sample(1, seed=0)  # the first run allocates; keep it out of request latency

    def decode_request(self, request: dict) -> Decoded:
        return Decoded(request, feeds_for(request, self.spec))

    def batch(self, inputs: list[Decoded]) -> list[Decoded]:
        return inputs

    def predict(self, x: Decoded | list[Decoded]) -> Decoded | list[Decoded]:
        """One generator call for every request of the batch (one request without batching)."""
        batch = x if isinstance(x, list) else [x]
        feeds = {k: np.concatenate([d.feeds[k] for d in batch]) for k in batch[0].feeds}
        images = self.gen.run(**feeds)  # [sum n, C, H, W]
        start = 0
        for d in batch:
            d.images = images[start:start + d.request["n"]]
            d.batch_requests = len(batch)
            start += d.request["n"]
        return batch if isinstance(x, list) else x

    def unbatch(self, output: list[Decoded]) -> list[Decoded]:
        return output

    def encode_response(self, output: Decoded) -> Response:
        request = output.request
        fmt = Format(request["format"])
        body = encode(output.images, output.feeds, self.gen.output_range, fmt.value,
                      request.get("nrow"))
        headers = {"x-batch-requests": str(output.batch_requests)}
        if "seed" in request:
            headers["x-seed"] = str(request["seed"])
        return Response(content=body, media_type=fmt.media_type, headers=headers)
