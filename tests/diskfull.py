"""Disks that fill up, for the tests of what a full disk leaves behind.

Two ways, each test module uses both:

* :class:`FillingDisk` (always runs): injects ENOSPC into every write under one folder once
  the disk "fills", at the layers a write goes through here: ``os.write`` (gan_accel's own
  writes), Python file objects opened for writing (onnx, PIL, onnxruntime's quantizer) and
  safetensors' Rust writer (``save_file``, which reports the OS error as text only). Space
  "free" there is what the fake disk has left.
* :func:`small_tmpfs` (where this process may mount one): a real size-limited tmpfs, so the
  C++ and Rust writers meet a real full disk too; skipped where mounting is not permitted.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import gan_accel.atomic
import gan_accel.checkpoints


def _enospc(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


class _BudgetedFile(io.RawIOBase):
    """A file object opened for writing on the filling disk: every write takes from it."""

    def __init__(self, disk: FillingDisk, raw, path: str):
        self.disk, self.raw, self.path = disk, raw, path

    def write(self, data) -> int:
        allowed = self.disk.take(self.path, len(memoryview(data).cast("B")))
        if allowed == 0 and len(data):
            raise _enospc(self.path)
        return self.raw.write(memoryview(data).cast("B")[:allowed])

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def writable(self):
        return True

    def readable(self):
        return self.raw.readable()

    def seekable(self):
        return self.raw.seekable()

    def seek(self, *args):
        return self.raw.seek(*args)

    def tell(self):
        return self.raw.tell()

    def flush(self):
        return self.raw.flush()

    def fileno(self):
        return self.raw.fileno()

    def close(self):
        self.raw.close()
        super().close()


class FillingDisk:
    """ENOSPC for writes under ``root`` once ``free`` bytes are used up (or, with ``fill_at``,
    from the first write to a file whose name the predicate accepts: the disk fills while that
    file is half written). :meth:`free_up` gives the disk its space back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path, free: int | None = None,
                 fill_at: Callable[[Path], bool] | None = None):
        self.root, self.left, self.fill_at = Path(root).resolve(), free, fill_at
        self.failed: list[Path] = []  # the files whose writes were refused
        self._patch(monkeypatch)

    # -- the fake disk ---------------------------------------------------------------------
    def on_disk(self, path) -> bool:
        try:
            return Path(path).resolve().is_relative_to(self.root)
        except (OSError, ValueError):
            return False

    def take(self, path, n: int) -> int:
        """How many of ``n`` bytes fit; the disk keeps the rest for nobody."""
        if self.fill_at is not None and self.fill_at(Path(path)):
            self.fill_at, self.left = None, max(n // 2, 1)  # full halfway through this file
        if self.left is None:
            return n
        allowed = min(n, self.left)
        self.left -= allowed
        if allowed < n:
            self.failed.append(Path(path))
        return allowed

    @property
    def free(self) -> int | None:
        return self.left

    def free_up(self) -> None:
        self.left, self.fill_at = None, None

    # -- the write layers ------------------------------------------------------------------
    def _patch(self, mp: pytest.MonkeyPatch) -> None:
        real_write, real_open = os.write, builtins.open
        real_free = gan_accel.atomic.free_bytes

        def write(fd, data):
            path = os.readlink(f"/proc/self/fd/{fd}")
            if not self.on_disk(path):
                return real_write(fd, data)
            allowed = self.take(path, len(memoryview(data).cast("B")))
            if allowed == 0 and len(data):
                raise _enospc(path)
            return real_write(fd, memoryview(data).cast("B")[:allowed])

        def open_(file, mode="r", *args, **kwargs):
            if not (isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax")
                    and self.on_disk(file)):
                return real_open(file, mode, *args, **kwargs)
            raw = real_open(file, mode.replace("t", "") + ("" if "b" in mode else "b"),
                            buffering=0)
            # a buffered writer retries a short write, and the retry meets ENOSPC: as a real
            # file object on a full disk
            writer = io.BufferedWriter(_BudgetedFile(self, raw, str(file)))
            if "b" in mode:
                return writer
            return io.TextIOWrapper(writer, encoding=kwargs.get("encoding") or "utf-8",
                                    newline=kwargs.get("newline"))

        def free_bytes(path):
            return self.left if self.on_disk(path) and self.left is not None \
                else real_free(path)

        save_file = gan_accel.checkpoints.save_file

        def save_file_(tensors, filename, metadata=None):
            if not self.on_disk(filename):
                return save_file(tensors, filename, metadata)
            from safetensors import SafetensorError
            from safetensors.torch import save

            data = save(tensors, metadata)
            allowed = self.take(filename, len(data))
            with real_open(filename, "wb") as f:
                f.write(data[:allowed])
            if allowed < len(data):  # what safetensors' Rust writer raises on ENOSPC
                raise SafetensorError("Error while serializing: I/O error: No space left on "
                                      "device (os error 28)")

        mp.setattr(os, "write", write)
        mp.setattr(builtins, "open", open_)
        mp.setattr(io, "open", open_)
        mp.setattr(gan_accel.atomic, "free_bytes", free_bytes)
        mp.setattr(gan_accel.checkpoints, "save_file", save_file_)


# ---------------------------------------------------------------------------------------------
# a real small file system
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def small_tmpfs(path: Path, size: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes on ``path`` for the block (needs root; skips the test
    where mounting is not permitted: the FillingDisk tests cover the same paths there)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a size-limited tmpfs needs root (the injected-ENOSPC tests run)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip().splitlines()[-1:]}); "
                    "the injected-ENOSPC tests run")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill ``folder``'s file system with one file until ``leave`` bytes are free."""
    st = os.statvfs(folder)
    free = st.f_bfree * st.f_frsize
    filler = folder / "filler"
    with builtins.open(filler, "wb") as f:
        f.write(b"\0" * max(free - leave, 0))
    return filler


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files a write could leave under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.startswith(".") or p.name.endswith(".tmp"))
