"""Run ``gan_accel.train`` and SIGKILL it right after a chosen rename of a checkpoint write.

Usage: kill_worker.py KILL FIRST_STEP_FILE TRAIN_ARGS...

KILL is ``none`` or ``PATTERN#N``: the process kills itself with SIGKILL right after the N-th
``os.replace`` whose destination's name matches the glob PATTERN (say
``ckpt-00000006*.safetensors#1``: the tensor file renamed, its JSON not yet). The first
training step this process runs (the trainer's ``pos.step``) is written to FIRST_STEP_FILE.
"""

import fnmatch
import os
import signal
import sys
from pathlib import Path

from gan_accel.cli import train
from gan_accel.errors import run_cli
from gan_accel.training.trainer import Trainer


def kill_after_rename(pattern: str, nth: int) -> None:
    real_replace, seen = os.replace, []

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if fnmatch.fnmatch(Path(dst).name, pattern):
            seen.append(dst)
            if len(seen) == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def record_first_step(path: Path) -> None:
    real_step = Trainer.train_step

    def train_step(self, *args):
        if not path.exists():
            path.write_text(str(self.pos.step))
        return real_step(self, *args)

    Trainer.train_step = train_step


def main(kill: str, first_step_file: str, argv: list[str]) -> int:
    if kill != "none":
        pattern, _, nth = kill.rpartition("#")
        kill_after_rename(pattern, int(nth))
    record_first_step(Path(first_step_file))
    return run_cli(train.main, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
