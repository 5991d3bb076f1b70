"""File writes that leave the whole new file or the old one, never half a file.

Every file the toolkit writes for a user (checkpoints, run records, sample grids, exported
models, bulk-sampling shards) goes through here. :func:`atomic_write` puts the bytes in a
hidden temporary file in the target's folder, fsyncs it, renames it over the target and fsyncs
the folder; :func:`append_text` appends whole lines only. When the disk (or the user's quota)
runs out, the partial write is removed and :class:`DiskFullError` names the file, the space
the write needs and the space left, so what was there before (the last good checkpoint, the
shards already written) is intact and a rerun can resume from it.

Imports nothing but the standard library and :mod:`gan_accel.errors` (the torch-free runtime
and bulk sampling use it).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from .errors import DiskFullError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Libraries that write in Rust or C++ report the OS error as text only (safetensors: "I/O
# error: No space left on device (os error 28)").
_NO_SPACE_TEXT = re.compile(
    rf"\bos error (?:{errno.ENOSPC}|{errno.EDQUOT})\b|No space left on device|Disk quota exceeded")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from, is the disk or quota running out."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return True
        if not isinstance(exc, OSError) and _NO_SPACE_TEXT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes this process may still write on the file system holding ``path`` (or its nearest
    existing parent); None when that cannot be read."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    # root may fill the blocks a file system reserves for it; other users may not
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


FULL_MARGIN = 64 * 1024  # a write that failed while less than this is free ran out of space


def disk_is_full(folder: str | os.PathLike) -> bool:
    """Whether ``folder``'s disk is full now: for libraries that report a failed write
    without its OS error (onnxruntime: "Protobuf serialization failed")."""
    free = free_bytes(folder)
    return free is not None and free < FULL_MARGIN


def disk_full_error(path: str | os.PathLike, needed: int | None, hint: str = "",
                    exc: BaseException | None = None) -> DiskFullError:
    """The one-line error for a write of ``needed`` bytes to ``path`` that found no space."""
    quota = isinstance(exc, OSError) and exc.errno == errno.EDQUOT
    return DiskFullError(Path(path), needed, free_bytes(Path(path).parent), hint,
                         reason="disk quota exceeded" if quota else "no space left on device")


def check_free_space(folder: str | os.PathLike, needed: int, what: str, hint: str = "") -> None:
    """DiskFullError before any work when ``folder``'s disk has less than ``needed`` bytes
    free for ``what``; ``needed`` must be a lower bound of what will be written."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise DiskFullError(Path(folder), needed, free, hint, reason="not enough disk space",
                            what=what, at_least=True)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the file system allows opening it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_temp(folder: Path, stem: str) -> Path:
    """Create an empty hidden ``.<stem>.<random>.tmp`` in ``folder``, with the permissions of
    any new file (the umask's; mkstemp's would make every published file private)."""
    for _ in range(100):
        tmp = Path(folder) / f".{stem}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def write_temp(folder: Path, stem: str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a new hidden temporary file in ``folder`` and fsync it; the
    temporary is removed when anything fails."""
    tmp = new_temp(folder, stem)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def publish(tmp: Path, path: Path) -> None:
    """Rename the fsynced ``tmp`` over ``path`` and fsync the folder (the rename is durable);
    ``tmp`` is removed when the rename fails."""
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_to(path: Path, data: bytes, sync: bool = False) -> None:
    """Write ``data`` as the whole content of ``path`` (created or truncated); ``sync``:
    fsync it too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None],
                 needed: int | None = None, hint: str = "") -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it over ``path``.

    A full disk (or quota) at any step removes the temporary and raises DiskFullError naming
    ``path`` and ``needed`` (the bytes the write takes); ``path`` keeps its old content.
    """
    path = Path(path)
    try:
        publish(write_temp(path.parent, path.name, write), path)
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(path, needed, hint, exc) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, hint: str = "") -> None:
    """Replace ``path``'s content with ``data`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: write_bytes_to(tmp, data), len(data), hint)


def atomic_write_text(path: str | os.PathLike, text: str, hint: str = "") -> None:
    """Replace ``path``'s content with ``text`` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode(), hint)


def append_text(path: str | os.PathLike, text: str, hint: str = "") -> None:
    """Append ``text`` (whole lines) to ``path``: all of it or, when the disk is full, none
    (the file is cut back to its previous length and DiskFullError raised)."""
    path, data = Path(path), text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            write_all(fd, data)
        except OSError as exc:
            os.ftruncate(fd, size)  # frees what was written: no partial line stays
            if is_disk_full(exc):
                raise disk_full_error(path, len(data), hint, exc) from None
            raise
    finally:
        os.close(fd)
