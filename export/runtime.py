"""Serve an exported generator with only ``onnxruntime`` and ``numpy`` (no torch, no gan_accel).

    gen = OnnxGenerator("g.onnx")            # CUDA if onnxruntime-gpu sees a GPU, else CPU
    images = gen.sample(64, seed=0)          # [64, C, H, W] float32 in gen.output_range
    gen.image_shape                          # (C, H, W): (1, 28, 28), (3, 64, 64), ...
    images = gen.run(z, label=label)         # your own latent
    gen.engine                               # every engine choice, for logs and benchmarks

The model's metadata (see :mod:`export.metadata`) says how to draw the latent, so no
checkpoint is needed. Bad inputs raise ``ValueError`` naming the input and the fix; a file
that is missing, not ONNX, or not a gan-accel export raises :class:`ModelFileError`.

Engine choices, as onnxruntime's documentation advises them (all recorded in
:attr:`OnnxGenerator.engine`):

* graph optimisation level ``all`` (layout and kernel fusions), the optimised graph saved
  beside the model (``g.ort-all-cpu.onnx``: inspectable, and loadable like the original on
  the same machine and onnxruntime version, with the same metadata);
* CPU: intra-op threads = the CPUs this process may use, sequential execution, workers that
  sleep instead of spinning, and batch slicing across threads (see :class:`OnnxGenerator`);
* CUDA: ``cudnn_conv_algo_search=HEURISTIC`` (the default EXHAUSTIVE search makes the first
  runs slow, and since onnxruntime 1.20 DEFAULT maps to a slow fallback), IO binding (inputs
  go to the device once, the image comes back once), and with ``cuda_graph_batch=B``
  ``enable_cuda_graph`` replaying one captured graph for that fixed batch size;
* the TensorRT execution provider ahead of CUDA when this onnxruntime build has it (engine
  and timing caches in ``g.trt-cache/`` beside the model).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..atomic import disk_is_full
from .metadata import OUTPUT_NAME, ModelMeta, check_image_shape

CPU, CUDA, TENSORRT = ("CPUExecutionProvider", "CUDAExecutionProvider",
                       "TensorrtExecutionProvider")
LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": "1"}


class ModelFileError(ValueError):
    """The .onnx file is missing, unreadable, not ONNX, or lacks gan-accel metadata."""


def default_providers(tensorrt: bool | None = None) -> list[str]:
    """CUDA (then CPU) when this onnxruntime build has the CUDA provider, else CPU; the
    TensorRT provider first when it is there too (``tensorrt=None``: when installed)."""
    available = ort.get_available_providers()
    if CUDA not in available:
        return [CPU]
    use_trt = TENSORRT in available if tensorrt is None else tensorrt
    return ([TENSORRT] if use_trt else []) + [CUDA, CPU]


def provider_entries(names: list, path: Path, cuda_graph: bool = False) -> list:
    """``names`` with the documented options attached: CUDA's conv algorithm search and
    CUDA graphs, TensorRT's caches beside the model. Entries given as (name, options)
    tuples are kept as they are."""
    entries = []
    for name in names:
        if not isinstance(name, str):
            entries.append(name)
        elif name == CUDA:
            entries.append((CUDA, {**CUDA_OPTIONS,
                                   "enable_cuda_graph": "1" if cuda_graph else "0"}))
        elif name == TENSORRT:
            cache = str(path.with_name(f"{path.stem}.trt-cache"))
            entries.append((TENSORRT, {"trt_engine_cache_enable": "True",
                                       "trt_engine_cache_path": cache,
                                       "trt_timing_cache_enable": "True",
                                       "trt_timing_cache_path": cache}))
        else:
            entries.append(name)
    return entries


def optimized_path(path: Path, level: str, provider: str) -> Path:
    """Where the optimised graph of ``path`` is saved: ``<stem>.ort-<level>-<ep>.onnx``."""
    tag = {CPU: "cpu", CUDA: "cuda", TENSORRT: "trt"}.get(provider, provider.lower())
    return path.with_name(f"{path.stem}.ort-{level}-{tag}.onnx")


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
    if level not in LEVELS:
        raise ValueError(f"graph optimisation level must be one of {', '.join(LEVELS)}, got "
                         f"{level!r}")
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # a chain of ops: nothing to overlap
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if dynamic_block_base:
        so.add_session_config_entry("session.dynamic_block_base", str(dynamic_block_base))
    so.log_severity_level = 3  # errors only
    return so


def _config_entry(so: ort.SessionOptions, key: str) -> str | None:
    """A session config entry, None when it was never set (onnxruntime's default holds)."""
    try:
        return so.get_session_config_entry(key)
    except RuntimeError:  # onnxruntime raises for a key that was never set
        return None


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


class ServedGenerator:
    """What every served generator shares: the latent layout of its :attr:`meta`, input
    checks, and sampling. Subclasses set ``meta`` and implement ``run(z, label=None,
    codes=None) -> images`` (float32 numpy in and out, checked with :meth:`check_inputs`)."""

    meta: ModelMeta

    def run(self, z: np.ndarray, label: np.ndarray | None = None,
            codes: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    # -- facts ------------------------------------------------------------------------------
    @property
    def output_range(self) -> str:
        """'unit' ([0, 1]) or 'symmetric' ([-1, 1])."""
        return self.meta.output_range

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image: the metadata's, or (an export older than that field)
        what one generated image has."""
        if self.meta.image_shape is not None:
            return self.meta.image_shape
        shape = getattr(self, "_probed_shape", None)
        if shape is None:
            shape = self._probed_shape = tuple(int(s) for s in self.sample(1, seed=0).shape[1:])
        return shape

    @property
    def num_labels(self) -> int:
        """Classes a ``label`` selects: cGAN classes, or InfoGAN's categorical code size."""
        return self.meta.latent.num_labels

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
            label = self._labels(label, n)
        if codes is not None and label is not None:
            raise ValueError("pass either label (the categorical code) or codes, not both")
        feeds = m.latent.sample_numpy(n, rng, label)
        if codes is not None:
            feeds["codes"] = codes
        return feeds

    def _labels(self, label, n: int) -> np.ndarray:
        label = np.asarray(label)
        if not np.issubdtype(label.dtype, np.integer):
            raise ValueError(f"label must hold integers, got dtype {label.dtype}")
        if label.shape != (n,):
            raise ValueError(f"label must have shape [{n}] (one per z row), got "
                             f"{list(label.shape)}")
        self.meta.latent.check_class(label)
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
            feeds["label"] = self._labels(label, n)
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

    def sample(self, n: int, seed: int | None = None, label=None,
               codes: np.ndarray | None = None) -> np.ndarray:
        """``n`` images, float32 [n, C, H, W] in :attr:`output_range`, from a fresh latent
        (see :meth:`latent` for ``seed``, ``label`` and ``codes``)."""
        return self.run(**self.latent(n, seed, label, codes))


class OnnxGenerator(ServedGenerator):
    """An exported gan-accel generator on onnxruntime.

    Args:
        path: the .onnx file written by ``gan_accel.export``.
        providers: onnxruntime providers, e.g. ``["CPUExecutionProvider"]``; default:
            (TensorRT,) CUDA when available (with CPU behind it), else CPU. Names get the
            documented options (:func:`provider_entries`); ``(name, options)`` tuples are
            used as given.
        threads: CPU threads (default: the CPUs this process may use).
        parallel: how CPU threads share a call. ``"batch"`` (default): a batch of at least
            ``2 * MIN_ROWS_PER_THREAD`` rows is cut into one slice per thread and the slices
            run at once, each single-threaded. onnxruntime's ConvTranspose loops over the
            images of a batch and parallelises poorly inside each: on 2 busy cores the DCGAN
            G at batch 256 ran 1.1x faster this way than with 2 intra-op threads (spin
            off), 2x faster than with spinning threads. ``"intra"``: one run, ``threads``
            intra-op threads.
        spin: let idle intra-op threads busy-wait (see :func:`session_options`).
        options: a ready ``ort.SessionOptions`` (overrides ``threads``/``spin``/``level``/
            ``save_optimized``; implies ``parallel="intra"``).
        level: graph optimisation level: all (default), extended, basic, none.
        save_optimized: write the optimised graph beside the model (:func:`optimized_path`);
            skipped, and said in :attr:`engine`, when that folder is not writable.
        cuda_graph_batch: on CUDA, capture the graph once and replay it for calls of exactly
            this batch size (``enable_cuda_graph``; other sizes raise ValueError).
        tensorrt: put the TensorRT provider first (None: when this onnxruntime has it; only
            with the default providers).
    """

    MIN_ROWS_PER_THREAD = 8

    def __init__(self, path: str | os.PathLike, providers: list | None = None,
                 threads: int | None = None, *, parallel: str = "batch", spin: bool = False,
                 options: ort.SessionOptions | None = None, level: str = "all",
                 save_optimized: bool = True, cuda_graph_batch: int | None = None,
                 tensorrt: bool | None = None):
        if parallel not in ("batch", "intra"):
            raise ValueError(f"parallel must be 'batch' or 'intra', got {parallel!r}")
        for name, value in (("threads", threads), ("cuda_graph_batch", cuda_graph_batch)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.threads = threads or default_threads()
        self.parallel = "intra" if options is not None else parallel
        self._pool: ThreadPoolExecutor | None = None
        self._graph = None  # (binding, {input: OrtValue}, output OrtValue) once captured
        self.path = Path(path)
        _check_file(self.path)
        intra = 1 if self.parallel == "batch" else self.threads
        wanted = list(providers) if providers else default_providers(tensorrt)
        first = wanted[0] if isinstance(wanted[0], str) else wanted[0][0]
        if cuda_graph_batch and first not in (CUDA, TENSORRT):
            raise ValueError("cuda_graph_batch needs the CUDA execution provider")
        saved, note = None, None
        if options is None:
            options = session_options(intra, spin, level)
            if save_optimized:
                saved = optimized_path(self.path, level, first)
                if not os.access(saved.parent, os.W_OK | os.X_OK):
                    saved, note = None, f"not saved: {self.path.parent} is not writable"
                elif ".ort-" in self.path.name:
                    saved, note = None, "not saved: this file is an optimised graph already"
                else:
                    options.optimized_model_filepath = str(saved)
        self.options = options
        entries = provider_entries(wanted, self.path, cuda_graph=bool(cuda_graph_batch))
        try:
            self.session = ort.InferenceSession(str(self.path), self.options,
                                                providers=entries)
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if saved is None or not disk_is_full(saved.parent):
                raise ModelFileError(f"onnxruntime cannot load {self.path} with {wanted}: "
                                     f"{first_line}") from None
            # the disk is full: the optimised graph (a cache) could not be saved; run without
            saved.unlink(missing_ok=True)
            note = f"not saved: no space left on the disk of {saved.parent}"
            print(f"note: {self.path.name}: optimised graph {note}", file=sys.stderr)
            saved, self.options.optimized_model_filepath = None, ""
            self.session = ort.InferenceSession(str(self.path), self.options,
                                                providers=entries)
        self.providers = self.session.get_providers()
        for gpu in (TENSORRT, CUDA):
            if gpu in wanted and gpu not in self.providers:
                print(f"note: {self.path.name}: {gpu} did not start; running on "
                      f"{self.providers[0]}", file=sys.stderr)
        try:
            self.meta, self.input_names = self._checked_meta()
        except ModelFileError:
            if saved is not None:  # a refused model leaves nothing behind
                saved.unlink(missing_ok=True)
            raise
        self.on_cuda = self.providers[0] in (CUDA, TENSORRT)
        self.cuda_graph_batch = cuda_graph_batch if self.on_cuda else None
        self.engine = self._describe(saved, note)

    def _checked_meta(self) -> tuple[ModelMeta, list[str]]:
        """The model's gan-accel metadata, and its graph inputs, which must be the ones the
        metadata names (ModelFileError otherwise)."""
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            meta = ModelMeta.from_props(props, str(self.path))
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
        names = [i.name for i in self.session.get_inputs()]
        if names != meta.input_names:
            raise ModelFileError(f"{self.path}: graph inputs {names} do not match its "
                                 f"metadata {meta.input_names}; re-export it")
        return self._with_graph_shape(meta), names

    def _with_graph_shape(self, meta: ModelMeta) -> ModelMeta:
        """``meta`` with its image shape checked against the graph's static output shape
        ``[batch, C, H, W]`` (ModelFileError if they differ); an export older than the
        ``image_shape`` field gets the graph's."""
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if OUTPUT_NAME not in outputs:
            raise ModelFileError(f"{self.path}: the graph has no {OUTPUT_NAME!r} output "
                                 f"(outputs {sorted(outputs)}); re-export it")
        dims = outputs[OUTPUT_NAME]
        static = (tuple(dims[1:]) if len(dims) == 4 and all(isinstance(d, int)
                                                             for d in dims[1:]) else None)
        if static is None:
            return meta
        if meta.image_shape is None:
            try:
                shape = check_image_shape(static, str(self.path))
            except ValueError as exc:
                raise ModelFileError(str(exc)) from None
            return dataclasses.replace(meta, image_shape=shape)
        if static != meta.image_shape:
            raise ModelFileError(f"{self.path}: the graph makes {list(static)} images but its "
                                 f"metadata says {list(meta.image_shape)}; re-export it")
        return meta

    def _describe(self, saved: Path | None, note: str | None) -> dict:
        """Every engine choice, as the session holds it (recorded by bench and bulk runs)."""
        so = self.options
        level = next((k for k, v in LEVELS.items() if v == so.graph_optimization_level),
                     str(so.graph_optimization_level))
        return {
            "engine": "onnxruntime", "onnxruntime": ort.__version__,
            "model": str(self.path), "dtype": self.meta.dtype,
            "providers": list(self.providers),
            "provider_options": {k: dict(v) for k, v in
                                 self.session.get_provider_options().items()},
            "graph_optimization_level": level,
            "optimized_model": str(saved) if saved else None,
            **({"optimized_model_note": note} if note else {}),
            "intra_op_threads": so.intra_op_num_threads,
            "inter_op_threads": so.inter_op_num_threads,
            "execution_mode": "sequential" if so.execution_mode == ort.ExecutionMode.
            ORT_SEQUENTIAL else "parallel",
            "threads": self.threads, "parallel": self.parallel if not self.on_cuda else None,
            "spin": _config_entry(so, "session.intra_op.allow_spinning") != "0",
            "dynamic_block_base": _config_entry(so, "session.dynamic_block_base"),
            "io_binding": self.on_cuda,
            "cuda_graph_batch": self.cuda_graph_batch,
        }

    def __repr__(self) -> str:
        m = self.meta
        return (f"OnnxGenerator({str(self.path)!r}, variant={m.variant}, inputs="
                f"{self.input_names}, step={m.step}, dtype={m.dtype}, "
                f"providers={self.providers}, threads={self.threads} ({self.parallel}))")

    # -- inference --------------------------------------------------------------------------
    def run(self, z: np.ndarray, label: np.ndarray | None = None,
            codes: np.ndarray | None = None) -> np.ndarray:
        """Generate from given inputs: ``z`` float32 [B, z_dim] (+ ``label`` int [B],
        ``codes`` float32 [B, code_dim]). Returns float32 [B, C, H, W] (:attr:`image_shape`)."""
        feeds = self.check_inputs(z, label, codes)
        if self.cuda_graph_batch:
            return self._run_graph(feeds)
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

    def _run_graph(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """CUDA graph: inputs and output live at fixed device addresses; the first call
        captures the graph, later ones copy the new inputs in place and replay it."""
        n = len(feeds["z"])
        if n != self.cuda_graph_batch:
            raise ValueError(f"this session replays a CUDA graph for batch "
                             f"{self.cuda_graph_batch}; got {n} rows (pass that many, or "
                             "open another OnnxGenerator for this size)")
        if self._graph is None:
            device_id = int(self.session.get_provider_options()
                            .get(CUDA, {}).get("device_id", 0))
            inputs = {k: ort.OrtValue.ortvalue_from_numpy(v, "cuda", device_id)
                      for k, v in feeds.items()}
            output = ort.OrtValue.ortvalue_from_shape_and_type(
                [n, *self.image_shape], np.float32, "cuda", device_id)
            binding = self.session.io_binding()
            for k, v in inputs.items():
                binding.bind_ortvalue_input(k, v)
            binding.bind_ortvalue_output(OUTPUT_NAME, output)
            self._graph = (binding, inputs, output)
        binding, inputs, output = self._graph
        for k, v in feeds.items():
            inputs[k].update_inplace(v)
        self.session.run_with_iobinding(binding)
        return output.numpy()

