"""Time README command 1 (``python -m gan_accel.train --compile``) from a cold start.

Run through ``scripts/cold_start.sh``, which empties every cache first. This runs the
command's own entry point (``gan_accel.train`` as ``__main__``) in this process, with
timers wrapped around the trainer's methods, and prints where the wall time went:
imports, data ready, each phase's compile (its first call), the first step's end, the
training steps (steps/s over the steps that compiled nothing), the per-epoch grid and
checkpoint cost, and the total. Extra arguments go to the command (e.g. ``--epochs 2``).
"""

from __future__ import annotations

import collections
import functools
import json
import runpy
import sys
import time

T0 = time.perf_counter()  # the interpreter's own start-up (~0.05 s) is not counted

marks: dict[str, float] = {}
spent: collections.Counter = collections.Counter()
calls: collections.Counter = collections.Counter()
trainers: list = []  # the command's Trainer, for its step count


def since_start() -> float:
    return time.perf_counter() - T0


def main() -> int:
    argv = sys.argv[1:]
    import gan_accel.cli.train  # noqa: F401  (what the command imports, timed as such)
    from gan_accel.training import trainer as trainer_mod

    marks["imports"] = since_start()
    Trainer = trainer_mod.Trainer

    def timed(name: str, label: str) -> None:
        fn = getattr(Trainer, name)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t
                calls[label] += 1
        setattr(Trainer, name, wrapper)

    load_data = Trainer._load_data

    def load_data_marked(self):
        data = load_data(self)
        marks["data ready"] = since_start()
        return data
    Trainer._load_data = load_data_marked

    fit = Trainer.fit

    def fit_marked(self):
        marks["trainer built"] = since_start()
        trainers.append(self)
        return fit(self)
    Trainer.fit = fit_marked

    first_call_done = Trainer._first_call_done

    def first_call_done_marked(self, ph, t0):
        first_call_done(self, ph, t0)
        marks[f"{ph.name} phase: compile + first update"] = since_start()
    Trainer._first_call_done = first_call_done_marked

    train_step = Trainer.train_step

    def train_step_marked(self, real, labels):
        out = train_step(self, real, labels)
        if "first step end" not in marks:
            marks["first step end"] = since_start()
        return out
    Trainer.train_step = train_step_marked

    timed("_end_epoch", "epoch end (grid + checkpoint)")
    timed("sample_grid", "sample grid")
    timed("save", "checkpoint")
    timed("_write_artifacts", "final artifacts")

    sys.argv = ["gan_accel.train", *argv]
    code = 0
    try:
        runpy.run_module("gan_accel.train", run_name="__main__")
    except SystemExit as exc:
        code = exc.code or 0
    marks["end"] = since_start()
    report(code)
    return int(code)


def report(code: int) -> None:
    total = marks["end"]
    first_end = marks.get("first step end", total)
    epochs = calls["epoch end (grid + checkpoint)"]
    epoch_s = spent["epoch end (grid + checkpoint)"]
    rows = []
    prev = 0.0
    for name, t in sorted(marks.items(), key=lambda kv: kv[1]):
        rows.append((name, t, t - prev))
        prev = t
    steps = _steps_run()
    train_s = total - first_end - epoch_s - spent["final artifacts"]
    print("\n== cold start of: python -m gan_accel.train " + " ".join(sys.argv[1:]))
    print(f"{'mark':<34}{'at s':>9}{'+ s':>9}")
    for name, t, dt in rows:
        print(f"{name:<34}{t:>9.1f}{dt:>9.1f}")
    if steps:
        print(f"steps after the first: {steps - 1} in {train_s:.1f} s of training "
              f"= {(steps - 1) / max(train_s, 1e-9):.1f} steps/s (epoch ends excluded)")
    if epochs:
        print(f"per epoch end (EMA calibration, grid, checkpoint): {epoch_s / epochs:.2f} s "
              f"x {epochs} = {epoch_s:.1f} s (of which grid {spent['sample grid']:.1f} s, "
              f"checkpoints {spent['checkpoint']:.1f} s over all calls)")
    print(f"final samples + loss plot: {spent['final artifacts']:.1f} s")
    print(f"total wall: {total:.1f} s; exit code {code}")
    print("load average at the end:", open("/proc/loadavg").read().split()[:3])
    print(json.dumps({"marks": {k: round(v, 2) for k, v in marks.items()},
                      "spent": {k: round(v, 2) for k, v in spent.items()},
                      "calls": dict(calls), "steps": steps}))


def _steps_run() -> int:
    return max((t.pos.step for t in trainers), default=0)


if __name__ == "__main__":
    sys.exit(main())
