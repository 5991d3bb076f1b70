"""The on-device divergence guard: no optimizer steps on a non-finite loss or gradient, and the
host, reading the flag only every --log-every steps, stops naming the first bad step."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_mnist

from gan_accel.errors import UserError
from gan_accel.training.guard import DivergenceGuard, make_optimizer
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
@pytest.mark.parametrize("bad", ["loss", "grad"])
def test_a_non_finite_value_skips_the_update_and_its_state(kind, bad):
    p = torch.nn.Parameter(torch.randn(4))
    opt = make_optimizer(kind, [p], 0.1, (0.5, 0.99))
    guard = DivergenceGuard(["D"], torch.device("cpu"))
    p.grad = torch.ones(4)
    guard.step("D", opt, torch.tensor(1.0), step=0)  # a good step creates the state
    weights = p.detach().clone()
    state = {k: v.clone() for k, v in opt.state[p].items()}
    p.grad = torch.tensor([1.0, float("nan"), 1.0, 1.0]) if bad == "grad" else torch.ones(4)
    loss = torch.tensor(float("inf") if bad == "loss" else 2.0)
    guard.step("D", opt, loss, step=1)
    assert torch.equal(p.detach(), weights)
    for k, v in opt.state[p].items():
        assert torch.equal(v, state[k]), k
    assert guard.first_bad().step == 1 and guard.first_bad().phase == "D"
    p.grad = torch.ones(4)
    guard.step("D", opt, torch.tensor(1.0), step=2)  # and training goes on after it
    assert not torch.equal(p.detach(), weights)
    assert guard.first_bad().step == 1  # the first bad step is kept


def _trainer(tmp_path, **kw):
    data = tmp_path / "data"
    tiny_mnist(data, n=120, seed=4)
    cfg = recipe_config("dcgan", dataset="mnist", data_dir=str(data), batch_size=20,
                             out=str(tmp_path / "run"), progress=False, **kw)
    return Trainer(cfg, log=lambda *_: None)


def test_a_nan_gradient_stops_the_run_within_log_every_steps(tmp_path):
    t = _trainer(tmp_path, epochs=5, log_every=3, checkpoint_every=100)
    weight = next(t.variant.D.parameters())
    poisoned_at, fired = 7, []

    def poison(grad):
        if t.pos.step == poisoned_at and not fired:
            fired.append(True)
            return grad * float("nan")
        return grad

    weight.register_hook(poison)
    steps_seen = []
    original = t.train_step
    t.train_step = lambda *a: (steps_seen.append(t.pos.step), original(*a))[1]
    with pytest.raises(UserError, match=f"non-finite D loss or gradient .* at step {poisoned_at}"):
        t.fit()
    assert fired and max(steps_seen) < poisoned_at + 3  # noticed at the next --log-every
    assert all(torch.isfinite(v).all() for v in t.variant.state_dict().values()
               if v.is_floating_point())


def test_no_host_sync_per_phase(tmp_path, monkeypatch):
    """The step never reads a device value on the host: .item()/bool()/float() of a tensor
    happen only at --log-every points (here: never, within 4 steps of log_every 50)."""
    t = _trainer(tmp_path, max_steps=4, log_every=50, ema=0.0)
    reads = []
    for name in ("item", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def spy(self, *a, _real=real, _name=name):
            reads.append(_name)
            return _real(self, *a)

        monkeypatch.setattr(torch.Tensor, name, spy)
    batches = t.loader.epoch(0)
    for _ in range(4):
        t.train_step(*next(batches))
    monkeypatch.undo()
    assert reads == [], reads
