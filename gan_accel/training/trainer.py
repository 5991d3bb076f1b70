"""One trainer for every variant: phases, optional torch.compile, checkpoints, exact resume.

A training step runs the variant's phases in order (D, then G every ``n_critic`` steps, then
any extra phase such as InfoGAN's info loss). Each phase draws fresh latent noise from the
trainer's own generator, computes its loss (compiled with ``--compile``), backpropagates and
steps its optimizer. The noise generator is re-seeded from (seed, rank, step) at every step,
and all other state that influences the weights (data position, optimizers, schedulers, EMA,
variant buffers, epoch loss sums) is checkpointed, so a resumed run continues bit-identically
on CPU.

Under ``torchrun`` every phase runs as one forward of a DistributedDataParallel wrapper
(:class:`PhaseRunner`) around the whole variant: gradients are averaged over ranks whatever
modules the phase calls and however often (D on real, fake and interpolated images), and
``broadcast_buffers`` hands rank 0's BatchNorm statistics and spectral-norm vectors to every
rank at the start of each phase. The compiled loss functions run inside that wrapper, so
Dynamo never sees DDP.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from .. import __version__
from ..atomic import append_text
from ..checkpoints import (
    EMA,
    MODEL,
    atomic_write_text,
    flatten_state,
    list_checkpoints,
    load_checkpoint,
    load_latest_good,
    prune_checkpoints,
    save_checkpoint,
    under_prefix,
    unflatten_state,
    with_prefix,
)
from ..config import TrainConfig
from ..data import BatchIterator, ImageSet, load_dataset, resolve_data_config, to_model_range
from ..devices import select_device
from ..errors import CheckpointError, UserError
from ..ops import build_ops
from ..plots import plot_losses, save_grid
from ..seeding import sample_grid_seed, step_noise_seed
from ..variants import Batch, Phase, Variant, build_variant, resolve_arch, resolve_networks
from .distributed import dist_info
from .ema import GeneratorEMA
from .guard import DivergenceGuard, make_optimizer
from .inductor_warmup import start_cpu_isa_checks

GRID_ROW = 10  # images per class in a class grid


class Diverged(RuntimeError):
    """A loss or weight became non-finite."""


def fixed_latent_for(variant: Variant, device, seed: int) -> dict[str, torch.Tensor]:
    """The latent used for every sample grid: a row of 10 per class/code (the first 10) when
    there is one."""
    spec = variant.latent
    gen = torch.Generator(device="cpu").manual_seed(sample_grid_seed(seed))
    if spec.num_labels:
        rows = torch.arange(min(spec.num_labels, GRID_ROW)).repeat_interleave(GRID_ROW)
        lat = spec.sample(len(rows), "cpu", gen, **spec.class_kwargs(rows))
    else:
        lat = spec.sample(64, "cpu", gen)
    return {k: v.to(device) for k, v in lat.items()}


@dataclass
class Position:
    step: int = 0  # steps completed
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # batches of the current epoch completed
    rollbacks: int = 0


@dataclass
class EpochSums:
    """Per-phase loss sums of the current epoch (the plateau schedulers' signal)."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, loss: torch.Tensor) -> None:
        value = loss.detach().double()
        self.sums[name] = self.sums.get(name, 0) + value
        self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / self.counts[k] for k, v in self.sums.items()}


class PhaseRunner(nn.Module):
    """Runs one phase's loss as ``forward``, so DDP can wrap a whole training phase."""

    def __init__(self, variant: Variant, loss_fns: dict):
        super().__init__()
        self.variant = variant
        self.loss_fns = loss_fns

    def forward(self, phase: str, batch: Batch):
        return self.loss_fns[phase](batch)


class Trainer:
    """Trains ``cfg.model`` into ``cfg.out``. Call :meth:`fit`."""

    def __init__(self, cfg: TrainConfig, log=print, resume_from: Path | None = None,
                 evaluator=None):
        cfg.validate()
        self.cfg, self.log, self.evaluator = cfg, log, evaluator
        self.device = select_device(cfg.device)
        check_amp(cfg.amp, self.device)
        self.rank, self.world = dist_info()
        if cfg.compile and self.device.type == "cpu":
            start_cpu_isa_checks()  # overlaps Inductor's first-kernel ISA checks with set-up
        self.run_dir = Path(cfg.out)
        self.ops = build_ops(cfg.kernels, self.device,
                             log=self.log if self.rank == 0 else (lambda *_: None))
        self.data = self._load_data()  # fills in the config's resolution, channels, ...
        torch.manual_seed(cfg.seed)
        self._check_classes(self.data)
        if not cfg.num_classes:  # the data's classes (a folder's subfolders, emoji's groups)
            cfg.num_classes = self.data.num_classes
        self.cfg = cfg = resolve_networks(cfg)  # the nets' concrete choices, saved with the run
        self.variant: Variant = build_variant(cfg, self.ops).to(self.device)
        self.phases: list[Phase] = self.variant.phases()
        self._setup_data()
        self._setup_optim()
        self.guard = DivergenceGuard([ph.name for ph in self.phases], self.device, self.world)
        self.ema = GeneratorEMA(self.variant.G, cfg.ema, cfg.ema_rampup) if cfg.ema > 0 else None
        self.noise = torch.Generator(device=self.device)
        self.fixed_latent = fixed_latent_for(self.variant, self.device, cfg.seed)
        self.pos = Position()
        self.epoch_sums = EpochSums()
        self.first_call_seconds: dict[str, float] = {}
        self.loss_fns = self._make_loss_fns()
        self.ddp = None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(PhaseRunner(self.variant, self.loss_fns),
                                               device_ids=ids, broadcast_buffers=True,
                                               find_unused_parameters=True)
        if resume_from is not None:
            self.load(resume_from)

    # -- setup -----------------------------------------------------------------------------
    def _load_data(self) -> ImageSet:
        """The run's data, before any network is built: the config's dataset, resolution,
        channels and background become the concrete values the run trains with (and saves).
        Under torchrun rank 0 loads first (decoding a folder into its cache once) while the
        other ranks wait, then they read that cache."""
        cfg = self.cfg
        quiet = self.rank != 0
        resolve_data_config(cfg)
        # a (variant, arch, resolution) that makes no sense fails here, before any decoding
        resolve_arch(cfg.model, cfg.resolution, cfg.arch)
        if self.world > 1 and self.rank != 0:
            dist.barrier()
        data = load_dataset(cfg.dataset, cfg.data_dir, train=True, download=cfg.download,
                            log=(lambda *_: None) if quiet else self.log,
                            resolution=cfg.resolution, channels=cfg.channels,
                            background=cfg.background, progress=cfg.progress and not quiet)
        if self.world > 1 and self.rank == 0:
            dist.barrier()
        assert (data.channels, data.resolution) == (cfg.channels, cfg.resolution), \
            (data.images.shape, cfg.channels, cfg.resolution)
        return data

    def _check_classes(self, data: ImageSet) -> None:
        """``--num-classes`` below the data's classes would index past cgan's embeddings."""
        cfg = self.cfg
        if cfg.num_classes and cfg.num_classes < data.num_classes:
            raise UserError(f"--num-classes {cfg.num_classes} is below the {data.num_classes} "
                            f"classes of {cfg.dataset}; pass --num-classes 0 (the data's) or "
                            f"at least {data.num_classes}")

    def _setup_data(self) -> None:
        """The batch loader: the whole set in the model's range on the device, or, when the
        set streams from its memory-mapped cache (or its float copy would not fit on the
        GPU), each batch read and converted as it is drawn. Same batches either way."""
        cfg, data = self.cfg, self.data
        y = data.labels.to(self.device)
        if data.streamed or not self._fits_on_device(data):
            def transform(images: torch.Tensor) -> torch.Tensor:
                return to_model_range(images, self.variant.output_range).to(self.device)

            self.loader = BatchIterator(data.images, y, cfg.batch_size, cfg.seed, self.rank,
                                        self.world, transform=transform)
            return
        x = to_model_range(data.images, self.variant.output_range).to(self.device)
        self.loader = BatchIterator(x, y, cfg.batch_size, cfg.seed, self.rank, self.world)

    def _fits_on_device(self, data: ImageSet) -> bool:
        """Whether the float32 copy of the data fits in half the GPU's free memory (on CPU
        the loader already decided from the host's memory)."""
        if self.device.type != "cuda":
            return True
        need = data.images.numel() * 4
        free, _ = torch.cuda.mem_get_info(self.device)
        if need <= free // 2:
            return True
        if self.rank == 0:
            self.log(f"streaming batches to {self.device}: the data in float32 ("
                     f"{need / 2**30:.2f} GiB) would take more than half its free memory")
        return False

    def _setup_optim(self) -> None:
        cfg = self.cfg
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self.scheds: dict[str, torch.optim.lr_scheduler.ReduceLROnPlateau] = {}
        for ph in self.phases:
            opt = make_optimizer(cfg.optimizer, ph.params, ph.lr, (cfg.beta1, cfg.beta2))
            self.optims[ph.name] = opt
            if cfg.plateau_factor < 1:
                self.scheds[ph.name] = torch.optim.lr_scheduler.ReduceLROnPlateau(
                    opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)

    def _make_loss_fns(self):
        """Each phase's loss function; with --compile one graph (fullgraph=True) each, whose
        backward AOT autograd compiles with it."""
        fns = {}
        for ph in self.phases:
            fn = ph.loss
            if self.cfg.compile:
                fn = torch.compile(fn, fullgraph=True, options=compile_options(
                    self.cfg.compile_mode, self.device))
            fns[ph.name] = fn
        return fns

    def _phase_loss(self, ph: Phase, batch: Batch):
        if self.ddp is not None:
            return self.ddp(ph.name, batch)
        return self.loss_fns[ph.name](batch)

    def _first_call(self, ph: Phase, batch: Batch):
        """The phase's first forward: with --compile Dynamo traces it and Inductor compiles
        its forward graph (AOT autograd compiles the backward graph at the first backward)."""
        if self.cfg.compile and self.rank == 0:
            self.log(f"compiling the {ph.name} phase (torch.compile, mode "
                     f"{self.cfg.compile_mode}, fullgraph) ...")
        try:
            return self._phase_loss(ph, batch)
        except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.UserError) as exc:
            # a graph break (or a data-dependent branch) under fullgraph=True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--compile: the {ph.name} phase of {self.cfg.model} does not "
                            f"compile to one graph ({first}); train without --compile or "
                            "remove the graph break from the variant") from None

    def _first_call_done(self, ph: Phase, t0: float) -> None:
        """After the phase's first forward, backward and update: said and timed, since with
        --compile that is where both of its graphs compile."""
        seconds = time.perf_counter() - t0
        self.first_call_seconds[ph.name] = seconds
        if self.cfg.compile and self.rank == 0:
            self.log(f"compiled the {ph.name} phase in {seconds:.1f} s (forward and backward "
                     "graphs, first step included)")

    # -- one step --------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.amp == "bf16":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run every phase due at this step; returns the phases' detached logs."""
        logs: dict[str, torch.Tensor] = {}
        step = self.pos.step
        self.noise.manual_seed(step_noise_seed(self.cfg.seed, self.rank, step))
        for ph in self.phases:
            if step % ph.every:
                continue
            latent = self.variant.latent.sample(real.shape[0], self.device, self.noise)
            batch = Batch(real, labels, latent,
                          self.variant.draw_augmentation(real.shape[0], self.device, self.noise))
            first = ph.name not in self.first_call_seconds
            t0 = time.perf_counter()
            with torch.profiler.record_function(f"{ph.name}_step"):
                with self._autocast():
                    if first:
                        loss, phase_logs = self._first_call(ph, batch)
                    else:
                        loss, phase_logs = self._phase_loss(ph, batch)
                opt = self.optims[ph.name]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                self.guard.step(ph.name, opt, loss, step)  # skipped on a non-finite value
                if ph.after is not None:
                    ph.after()
            if first:
                self._first_call_done(ph, t0)
            self.epoch_sums.add(ph.name, loss)
            logs.update(phase_logs)
        self.pos.step += 1
        if self.ema is not None:
            images = real.shape[0] * self.world
            self.ema.update(self.variant.G, self.pos.step * images, images)
        return logs

    def _share_rank0_buffers(self) -> None:
        """End of a distributed run: every rank holds rank 0's buffers (BatchNorm statistics
        of its last phase, the EMA generator's re-estimated statistics), as in the checkpoint."""
        if self.ema is not None:
            self.ema.calibrated(self.variant.latent)
        modules = [self.variant] + ([self.ema] if self.ema is not None else [])
        for module in modules:
            for b in module.buffers():
                dist.broadcast(b, 0)

    def check_finite(self) -> None:
        """Raise :class:`Diverged` if any step so far had a non-finite loss or gradient.

        Reads the guard's device flags, so it waits for the device: called every
        ``--log-every`` steps and before every checkpoint, never per phase.
        """
        bad = self.guard.first_bad()
        if bad is not None:
            raise Diverged(f"non-finite {bad.phase} loss or gradient (loss {bad.loss}) at step "
                           f"{bad.step}; that update was skipped")

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.cfg
        if self.rank == 0:
            self._prepare_run_dir()
        per_epoch = self.loader.batches_per_epoch
        total = cfg.epochs * per_epoch
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        self._say_setup(total)
        self._t_fit, self.excluded_seconds = time.perf_counter(), 0.0
        if self.pos.batch >= per_epoch:  # resumed from the checkpoint at an epoch's last step
            self._end_epoch()
        while self.pos.step < total:
            try:
                self._run_until(total)
                self.check_finite()
            except Diverged as exc:
                self._handle_divergence(exc)
        if self.ddp is not None:
            self._share_rank0_buffers()
        if self.rank == 0:
            self.save()
            self._write_artifacts()
        summary = {"steps": self.pos.step, "epochs": self.pos.epoch,
                   "first_call_seconds": self.first_call_seconds}
        return summary

    def _run_until(self, total: int) -> None:
        cfg, per_epoch = self.cfg, self.loader.batches_per_epoch
        bar = None
        if cfg.progress and self.rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=self.pos.step, unit="step", dynamic_ncols=True,
                       desc=cfg.model)
        t_last, step_last = time.perf_counter(), self.pos.step
        try:
            while self.pos.step < total:
                for real, labels in self.loader.epoch(self.pos.epoch, self.pos.batch):
                    logs = self.train_step(real, labels)
                    self.pos.batch += 1
                    if bar is not None:
                        bar.update(1)
                    if self.pos.step % cfg.log_every == 0 or self.pos.step == total:
                        self.check_finite()
                        now = time.perf_counter()
                        ips = (self.pos.step - step_last) * cfg.batch_size * self.world / max(
                            now - t_last, 1e-9)
                        t_last, step_last = now, self.pos.step
                        row = self._log_row(logs, ips)
                        if bar is not None:
                            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                                             if k.startswith("loss_") or k == "img_per_s"})
                    if cfg.eval_every and self.pos.step % cfg.eval_every == 0:
                        self.check_finite()
                        self._evaluate()
                    if cfg.checkpoint_every and self.pos.step % cfg.checkpoint_every == 0:
                        self.check_finite()  # never a checkpoint after a skipped update
                        self.save()
                    if self.pos.step >= total:
                        break
                if self.pos.batch >= per_epoch:
                    self._end_epoch()
        finally:
            if bar is not None:
                bar.close()

    def _end_epoch(self) -> None:
        self.check_finite()
        means = self.epoch_sums.means()
        for name, sched in self.scheds.items():
            if name in means:
                sched.step(means[name])
        self.epoch_sums = EpochSums()
        self.pos.epoch += 1
        self.pos.batch = 0
        if self.rank == 0:
            self._write_metrics({"kind": "epoch", "step": self.pos.step, "epoch": self.pos.epoch,
                                 **{f"epoch_loss_{k}": v for k, v in means.items()},
                                 **{f"lr_{k}": o.param_groups[0]["lr"]
                                    for k, o in self.optims.items()}})
            self.sample_grid(self.run_dir / "samples" / f"epoch_{self.pos.epoch:03d}.png")
            if not self.cfg.checkpoint_every:
                self.save()

    def _log_row(self, logs: dict[str, torch.Tensor], ips: float) -> dict:
        row = {"kind": "train", "step": self.pos.step, "epoch": self.pos.epoch,
               "img_per_s": round(ips, 1), **{k: float(v) for k, v in logs.items()}}
        if self.rank == 0:
            self._write_metrics(row)
        return row

    def _write_metrics(self, row: dict) -> None:
        append_text(self.run_dir / "metrics.jsonl", json.dumps(row) + "\n")  # whole lines
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self._tb.add_scalar(k, v, row["step"])

    _tb = None

    def _say_setup(self, total: int) -> None:
        if self.rank != 0:
            return
        cfg = self.cfg
        mode = f"compiled ({cfg.compile_mode})" if cfg.compile else "eager"
        shape = f"{cfg.channels}x{cfg.resolution}x{cfg.resolution}"
        self.log(f"training {cfg.model} on {len(self.data):,} images of {shape} "
                 f"({self.data.source}) | {self.device} | {mode} | kernels: {self.ops.name} | "
                 f"{total} steps of {cfg.batch_size} | run dir {self.run_dir}")

    # -- evaluation and divergence ---------------------------------------------------------
    def train_seconds(self) -> float:
        """Wall seconds of training in this fit() so far: evaluation and writing excluded."""
        return time.perf_counter() - self._t_fit - self.excluded_seconds

    def _evaluate(self) -> None:
        if self.evaluator is None or self.rank != 0:
            return
        t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = self.train_seconds()
        result = self.evaluator(self)
        self._write_metrics({"kind": "eval", "step": self.pos.step,
                             "train_seconds": round(seconds, 2), **result})
        best_file = self.run_dir / "best" / "best.json"
        score = result.get("fid")
        prev = None
        if best_file.is_file():
            prev = json.loads(best_file.read_text()).get("eval", {}).get("fid")
        if score is not None and (prev is None or score < prev):
            self.save(folder=self.run_dir / "best", name="best", extra={"eval": result})
        self.excluded_seconds += time.perf_counter() - t0

    def _handle_divergence(self, exc: Diverged) -> None:
        found = list_checkpoints(self.run_dir)
        last = found[-1] if found else None
        if self.cfg.on_nan == "stop" or last is None:
            hint = (f"the last good checkpoint is {last}; resume with --resume {self.run_dir} "
                    "and a lower learning rate, or use --on-nan rollback") if last else \
                "no checkpoint was written yet; lower the learning rates"
            raise UserError(f"training diverged: {exc}; {hint}") from None
        if self.pos.rollbacks >= 3:
            raise UserError(f"training diverged again after 3 rollbacks: {exc}; lower the "
                            "learning rates") from None
        rollbacks = self.pos.rollbacks + 1
        self.log(f"diverged ({exc}); rolling back to {last} with halved learning rates")
        self.load(last)
        self.guard.reset()
        self.pos.rollbacks = rollbacks
        for opt in self.optims.values():
            for group in opt.param_groups:
                group["lr"] *= 0.5

    # -- pictures --------------------------------------------------------------------------
    def sampling_generator(self) -> nn.Module:
        """The generator samples come from: the (calibrated) EMA G when the run keeps one."""
        if self.ema is None:
            return self.variant.G
        return self.ema.calibrated(self.variant.latent)

    @torch.no_grad()
    def sample_grid(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        G = self.sampling_generator()
        was_training = G.training
        G.eval()
        images = G(**self.fixed_latent)
        G.train(was_training)
        nrow = GRID_ROW if self.variant.latent.num_labels else 8
        save_grid(images, path, self.variant.output_range, nrow=nrow)

    def _write_artifacts(self) -> None:
        self.sample_grid(self.run_dir / "samples.png")
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.is_file():
            plot_losses(metrics, self.run_dir / "loss.png", title=f"{self.cfg.model} losses")

    # -- checkpoints -----------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        run = self.run_dir
        try:
            run.mkdir(parents=True, exist_ok=True)
            probe = run / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"cannot write to run directory {run} ({exc.strerror}); choose "
                            "another --out") from None
        if _tensorboard_available() and self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run / "tb"))
        atomic_write_text(run / "config.json", json.dumps(self.cfg.to_dict(), indent=1))

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON skeleton) of everything a resume needs."""
        tensors = with_prefix(MODEL, self.variant.state_dict())
        if self.ema is not None:
            self.ema.calibrated(self.variant.latent)
            tensors.update(with_prefix(EMA, self.ema.state_dict()))
        skeleton = {
            "optim": {k: flatten_state(o.state_dict(), f"optim.{k}", tensors)
                      for k, o in self.optims.items()},
            "sched": {k: s.state_dict() for k, s in self.scheds.items()},
            "torch_rng": flatten_state(torch.get_rng_state(), "rng.torch", tensors),
            "epoch_sums": flatten_state(self.epoch_sums.sums, "epoch_sums", tensors),
            "epoch_counts": self.epoch_sums.counts,
        }
        return tensors, skeleton

    def save(self, folder: Path | None = None, name: str | None = None,
             extra: dict | None = None) -> Path | None:
        """Write a checkpoint (never one holding non-finite weights)."""
        if self.rank != 0:
            return None
        for k, v in self.variant.state_dict().items():
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise UserError(f"weights became non-finite ({k}) at step {self.pos.step}; "
                                "no checkpoint written, the last good one is kept")
        tensors, skeleton = self.state_tensors()
        meta = {
            "config": self.cfg.to_dict(),
            "position": vars(self.pos).copy(),
            "state": skeleton,
            "variant": self.variant.extra_state_meta(),
            "versions": {"gan_accel": __version__, "torch": torch.__version__},
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **(extra or {}),
        }
        folder = folder or self.run_dir / "checkpoints"
        path = save_checkpoint(folder, name or f"ckpt-{self.pos.step:08d}", tensors, meta)
        if folder == self.run_dir / "checkpoints":
            prune_checkpoints(self.run_dir, self.cfg.keep_last)
        return path

    def load(self, path: Path) -> None:
        """Restore everything from a checkpoint (a run dir: its newest good one)."""
        path = Path(path)
        if path.is_dir():
            _, meta, tensors = load_latest_good(path)
        else:
            meta, tensors = load_checkpoint(path)
        if meta["config"]["model"] != self.cfg.model:
            raise CheckpointError(f"{path} holds a {meta['config']['model']} run, not "
                                  f"{self.cfg.model}; pass --model {meta['config']['model']}")
        self.variant.load_state_dict(under_prefix(MODEL, tensors))
        if self.ema is not None:
            self.ema.load_state_dict(under_prefix(EMA, tensors))
        st = meta["state"]
        for k, o in self.optims.items():
            o.load_state_dict(unflatten_state(st["optim"][k], tensors))
        for k, s in self.scheds.items():
            s.load_state_dict(st["sched"][k])
        torch.set_rng_state(unflatten_state(st["torch_rng"], tensors))
        sums = unflatten_state(st["epoch_sums"], tensors)
        self.epoch_sums = EpochSums({k: v.to(torch.float64) for k, v in sums.items()},
                                    dict(st["epoch_counts"]))
        self.pos = Position(**meta["position"])


def compile_options(mode: str, device: torch.device) -> dict:
    """Inductor options for ``--compile-mode`` on ``device``.

    On CPU, Inductor's layout optimisation (channels-last buffers around convolutions) makes
    the fused BatchNorm / ReLU kernels between an FC layer and a transposed convolution read
    across the batch with a large stride: BEGAN's D step took 634 ms compiled vs 279 ms eager
    with it, 217 ms without it (1 thread); WGAN-GP 311 -> 234 ms, DCGAN 285 -> 237 ms.
    Also on CPU, the activations' masks are computed as float factors (:mod:`.mask_pass`):
    Inductor's C++ kernels store bool masks through a slow path.
    """
    import torch._inductor

    options = dict(torch._inductor.list_mode_options(mode))
    if device.type == "cpu":
        from .mask_pass import MasksAsFloat

        options["layout_optimization"] = False
        options["joint_custom_post_pass"] = MasksAsFloat()
    return options


def check_amp(amp: str, device: torch.device) -> None:
    """UserError, before any work, when ``--amp`` cannot run on ``device``."""
    if amp == "bf16" and device.type != "cuda":
        raise UserError("--amp bf16 needs a CUDA device; drop --amp on CPU")


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
