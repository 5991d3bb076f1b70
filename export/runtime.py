"""Serve an exported generator with only ``onnxruntime`` and ``numpy`` (no torch, no gan_accel).

    gen = OnnxGenerator("g.onnx")            # CUDA if onnxruntime-gpu sees a GPU, else CPU
    images = gen.sample(64, seed=0)          # [64, 1, 28, 28] float32 in gen.output_range
    images = gen.run(z, label=label)         # your own latent

The model's metadata (see :mod:`export.metadata`) says how to draw the latent, so no
checkpoint is needed. Bad inputs raise ``ValueError`` naming the input and the fix; a file
that is missing, not ONNX, or not a gan-accel export raises :class:`ModelFileError`.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .metadata import OUTPUT_NAME, ModelMeta

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


class ModelFileError(ValueError):
    """The .onnx file is missing, unreadable, not ONNX, or lacks gan-accel metadata."""


def default_providers() -> list[str]:
    """CUDA (then CPU) when this onnxruntime build has the CUDA provider, else CPU."""
    return [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]


def default_threads() -> int:
    """The CPUs this process may run on (ORT's own default can count the whole host)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None, spin: bool = False,
                    level: str = "all", dynamic_block_base: int = 4) -> ort.SessionOptions:
    """CPU-tuned session options: all graph optimisations, ``threads`` intra-op, sequential.

    ``spin=False`` (idle workers sleep instead of busy-waiting) and ``dynamic_block_base=4``
    (work handed out in shrinking blocks, so a worker descheduled by another process does
    not stall the op) made the DCGAN G 2x faster at batch 256 on 2 cores shared with busy
    processes (47 -> 21 ms); they cost ~5% at batch 1 (77 -> 81 us). On an idle machine
    ``spin=True`` may win back those microseconds.
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # a chain of ops: nothing to overlap
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if dynamic_block_base:
        so.add_session_config_entry("session.dynamic_block_base", str(dynamic_block_base))
    so.log_severity_level = 3  # errors only
    return so


def _check_file(path: Path) -> None:
    """Fail early, naming the file, for a missing or non-ONNX file (onnx.checker if present)."""
    if not path.is_file():
        raise ModelFileError(f"ONNX model {path} does not exist; export one with "
                             "`python -m gan_accel.export --checkpoint RUN_DIR --out FILE`")
    try:
        import onnx
    except ImportError:  # serving without onnx: onnxruntime's own load is the check
        return
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # DecodeError, ValidationError, OSError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"{path} is not a valid ONNX model ({first})") from None


class OnnxGenerator:
    """An exported gan-accel generator on onnxruntime.

    Args:
        path: the .onnx file written by ``gan_accel.export``.
        providers: onnxruntime providers, e.g. ``["CPUExecutionProvider"]``; default: CUDA
            when available (with CPU behind it), else CPU.
        threads: CPU threads (default: the CPUs this process may use).
        parallel: how CPU threads share a call. ``"batch"`` (default): a batch of at least
            ``2 * MIN_ROWS_PER_THREAD`` rows is cut into one slice per thread and the slices
            run at once, each single-threaded. onnxruntime's ConvTranspose loops over the
            images of a batch and parallelises poorly inside each: on 2 busy cores the DCGAN
            G at batch 256 ran 1.1x faster this way than with 2 intra-op threads (spin
            off), 2x faster than with spinning threads. ``"intra"``: one run, ``threads``
            intra-op threads.
        spin: let idle intra-op threads busy-wait (see :func:`session_options`).
        options: a ready ``ort.SessionOptions`` (overrides ``threads``/``spin``; implies
            ``parallel="intra"``).
    """

    MIN_ROWS_PER_THREAD = 8

    def __init__(self, path: str | os.PathLike, providers: list | None = None,
                 threads: int | None = None, *, parallel: str = "batch", spin: bool = False,
                 options: ort.SessionOptions | None = None):
        if parallel not in ("batch", "intra"):
            raise ValueError(f"parallel must be 'batch' or 'intra', got {parallel!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        self.threads = threads or default_threads()
        self.parallel = "intra" if options is not None else parallel
        self._pool: ThreadPoolExecutor | None = None
        self.path = Path(path)
        _check_file(self.path)
        intra = 1 if self.parallel == "batch" else self.threads
        self.options = options or session_options(intra, spin)
        wanted = list(providers) if providers else default_providers()
        try:
            self.session = ort.InferenceSession(str(self.path), self.options, providers=wanted)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelFileError(f"onnxruntime cannot load {self.path} with {wanted}: "
                                 f"{first}") from None
        self.providers = self.session.get_providers()
        if CUDA in wanted and CUDA not in self.providers:
            print(f"note: {self.path.name}: CUDAExecutionProvider did not start; running on "
                  f"{self.providers[0]}", file=sys.stderr)
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.meta = ModelMeta.from_props(props, str(self.path))
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
        names = [i.name for i in self.session.get_inputs()]
        if names != self.meta.input_names:
            raise ModelFileError(f"{self.path}: graph inputs {names} do not match its "
                                 f"metadata {self.meta.input_names}; re-export it")
        self.input_names = names
        self.on_cuda = self.providers[0] == CUDA

    # -- facts ------------------------------------------------------------------------------
    @property
    def output_range(self) -> str:
        """'unit' ([0, 1]) or 'symmetric' ([-1, 1])."""
        return self.meta.output_range

    @property
    def num_labels(self) -> int:
        """Classes a ``label`` selects: cGAN classes, or InfoGAN's categorical code size."""
        return self.meta.latent.num_labels

    def __repr__(self) -> str:
        m = self.meta
        return (f"OnnxGenerator({str(self.path)!r}, variant={m.variant}, inputs="
                f"{self.input_names}, step={m.step}, dtype={m.dtype}, "
                f"providers={self.providers}, threads={self.threads} ({self.parallel}))")

    # -- inputs -----------------------------------------------------------------------------
    def latent(self, n: int, seed: int | None = None, label=None,
               codes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Draw ``n`` latent inputs with numpy from the metadata's distributions.

        ``label``: an int or ``[n]`` ints fixing the cGAN class, or for InfoGAN the
        categorical code (its continuous codes stay random). ``codes``: InfoGAN's full
        ``[n, cat_dim + cont_dim]`` float32 codes. Returns ``{input name: array}``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        m, rng = self.meta, np.random.default_rng(seed)
        if label is not None and not self.num_labels:
            raise ValueError(f"label: {m.variant} is unconditional (it takes only z)")
        if codes is not None and not m.code_dim:
            raise ValueError(f"codes: {m.variant} takes no codes input")
        if label is not None:
            if np.ndim(label) == 0:  # one class for all n
                label = np.full(n, label, dtype=np.asarray(label).dtype)
            label = self._labels(label, n, self.num_labels)
        if codes is not None and label is not None:
            raise ValueError("pass either label (the categorical code) or codes, not both")
        feeds = m.latent.sample_numpy(n, rng, label)
        if codes is not None:
            feeds["codes"] = codes
        return feeds

    def _labels(self, label, n: int, classes: int) -> np.ndarray:
        label = np.asarray(label)
        if not np.issubdtype(label.dtype, np.integer):
            raise ValueError(f"label must hold integers, got dtype {label.dtype}")
        if label.shape != (n,):
            raise ValueError(f"label must have shape [{n}] (one per z row), got "
                             f"{list(label.shape)}")
        if n and (label.min() < 0 or label.max() >= classes):
            bad = label[(label < 0) | (label >= classes)][0]
            raise ValueError(f"label {bad} is out of range 0..{classes - 1}")
        return label.astype(np.int64, copy=False)

    def _float_input(self, name: str, x, width: int, n: int | None) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise ValueError(f"{name} must be float32, got {x.dtype}; use "
                             f"{name}.astype(np.float32)")
        if x.ndim != 2 or x.shape[1] != width or (n is not None and x.shape[0] != n):
            rows = n if n is not None else "B"
            raise ValueError(f"{name} must have shape [{rows}, {width}] for this "
                             f"{self.meta.variant} model, got {list(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} is empty; pass at least one row")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} holds NaN or inf")
        return np.ascontiguousarray(x)

    def check_inputs(self, z, label=None, codes=None) -> dict[str, np.ndarray]:
        """Validate and return the feeds; ValueError naming the bad input otherwise."""
        m = self.meta
        feeds = {"z": self._float_input("z", z, m.z_dim, None)}
        n = feeds["z"].shape[0]
        if m.num_classes:
            if label is None:
                raise ValueError(f"label is required: {m.variant} is conditioned on a class "
                                 f"label, int64 [{n}] in 0..{m.num_classes - 1}")
            feeds["label"] = self._labels(label, n, m.num_classes)
        elif label is not None:
            raise ValueError(f"label: {m.variant} takes no label input")
        if m.code_dim:
            if codes is None:
                raise ValueError(f"codes is required: {m.variant} takes codes float32 "
                                 f"[{n}, {m.code_dim}] (one-hot {m.cat_dim} ++ {m.cont_dim} "
                                 "continuous)")
            feeds["codes"] = self._float_input("codes", codes, m.code_dim, n)
        elif codes is not None:
            raise ValueError(f"codes: {m.variant} takes no codes input")
        return feeds

    # -- inference --------------------------------------------------------------------------
    def run(self, z: np.ndarray, label: np.ndarray | None = None,
            codes: np.ndarray | None = None) -> np.ndarray:
        """Generate from given inputs: ``z`` float32 [B, z_dim] (+ ``label`` int [B],
        ``codes`` float32 [B, code_dim]). Returns float32 [B, 1, 28, 28]."""
        feeds = self.check_inputs(z, label, codes)
        if self.on_cuda:
            return self._run_bound(feeds)
        slices = 1
        if self.parallel == "batch":
            slices = min(self.threads, len(feeds["z"]) // self.MIN_ROWS_PER_THREAD)
        if slices <= 1:
            return self.session.run([OUTPUT_NAME], feeds)[0]
        return self._run_sliced(feeds, slices)

    def _run_sliced(self, feeds: dict[str, np.ndarray], slices: int) -> np.ndarray:
        """CPU data parallelism: ``slices`` row slices run at once (onnxruntime releases the
        GIL), the first on the calling thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="onnx-gen")
        cuts = np.linspace(0, len(feeds["z"]), slices + 1).astype(int)  # [slices + 1]
        parts = [{k: v[a:b] for k, v in feeds.items()}
                 for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        futures = [self._pool.submit(self.session.run, [OUTPUT_NAME], p) for p in parts[1:]]
        first = self.session.run([OUTPUT_NAME], parts[0])[0]
        return np.concatenate([first, *(f.result()[0] for f in futures)])

    def close(self) -> None:
        """Stop the worker threads (they also stop at interpreter exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> OnnxGenerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """CUDA: IO binding, so inputs go to the device once and the output comes back once."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output(OUTPUT_NAME, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def sample(self, n: int, seed: int | None = None, label=None,
               codes: np.ndarray | None = None) -> np.ndarray:
        """``n`` images, float32 [n, 1, 28, 28] in :attr:`output_range`, from a fresh latent
        (see :meth:`latent` for ``seed``, ``label`` and ``codes``)."""
        return self.run(**self.latent(n, seed, label, codes))

