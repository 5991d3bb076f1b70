"""The divergence guard, on the device: no optimizer steps on a non-finite loss or gradient.

Checking ``bool(torch.isfinite(loss))`` after every phase would make the host wait for the
device once per phase, which on a GPU drains the launch queue. Instead each phase computes a
``found_inf`` flag on the device (the loss and every gradient, in one fused check, the way
``GradScaler`` does) and its optimizer skips the update when the flag is set: fused Adam reads
the flag itself; any other optimizer is stepped and then put back from a snapshot (parameters
and state) where the flag is set. The guard remembers the first bad step, its phase and its
loss in device tensors; the host reads them only in :meth:`DivergenceGuard.first_bad`, which
the trainer calls every ``--log-every`` steps and before every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class BadStep:
    step: int
    phase: str
    loss: float


def make_optimizer(kind: str, params: list[nn.Parameter], lr: float,
                   betas: tuple[float, float]) -> torch.optim.Optimizer:
    """The phase's optimizer: fused Adam (one kernel for all parameters; it skips its update
    on the device when ``found_inf`` is set) or RMSprop."""
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


def _is_fused(opt: torch.optim.Optimizer) -> bool:
    return bool(opt.defaults.get("fused"))


class DivergenceGuard:
    """Per phase: check the loss and gradients, step the optimizer only if all are finite."""

    def __init__(self, phases: list[str], device: torch.device, world: int = 1):
        self.phases, self.device, self.world = list(phases), device, world
        self._found = {p: torch.zeros((), device=device) for p in phases}
        self._one = torch.ones((), device=device)
        self.reset()

    def reset(self) -> None:
        """Forget any bad step (after a rollback)."""
        self._bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        self._bad_phase = torch.full((), -1, dtype=torch.long, device=self.device)
        self._bad_loss = torch.zeros((), device=self.device)

    @torch.no_grad()
    def step(self, phase: str, opt: torch.optim.Optimizer, loss: torch.Tensor,
             step: int) -> None:
        """``opt.step()`` unless ``loss`` or a gradient of ``opt``'s parameters is non-finite."""
        found = self._found[phase]
        found.copy_(~torch.isfinite(loss.detach().float()))
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if grads:  # sets found to 1 on any inf/nan; the multiply by one leaves grads as they are
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._one)
        if self.world > 1:  # every rank must skip or step together
            dist.all_reduce(found, op=dist.ReduceOp.MAX)
        if _is_fused(opt):
            opt.found_inf = found
            opt.step()
        else:
            self._step_or_restore(opt, found)
        new = (self._bad_step < 0) & (found > 0)
        self._bad_step.copy_(torch.where(new, torch.full_like(self._bad_step, step),
                                         self._bad_step))
        self._bad_phase.copy_(torch.where(new, torch.full_like(self._bad_phase,
                                                               self.phases.index(phase)),
                                          self._bad_phase))
        self._bad_loss.copy_(torch.where(new, loss.detach().float(), self._bad_loss))

    @staticmethod
    def _step_or_restore(opt: torch.optim.Optimizer, found: torch.Tensor) -> None:
        """Step ``opt``; where ``found`` is set, leave parameters and state as they were."""
        params = [p for g in opt.param_groups for p in g["params"]]

        def tensors() -> list[torch.Tensor]:
            return params + [v for p in params for v in opt.state.get(p, {}).values()
                             if isinstance(v, torch.Tensor) and v.is_floating_point()]

        before = tensors()
        saved = [t.clone() for t in before]
        for p in params:  # no inf/nan enters the optimizer state, even on its first step
            if p.grad is not None:
                p.grad.copy_(torch.where(found > 0, torch.zeros_like(p.grad), p.grad))
        opt.step()
        for new, old in zip(before, saved, strict=True):
            new.copy_(torch.where(found > 0, old, new))

    def first_bad(self) -> BadStep | None:
        """The first step whose loss or gradients were non-finite (host read: a sync)."""
        step = int(self._bad_step)
        if step < 0:
            return None
        return BadStep(step, self.phases[int(self._bad_phase)], float(self._bad_loss))
