"""User-facing errors and the CLI wrapper that turns them into one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix."""


class DataError(UserError):
    """A data file is missing, corrupt or inconsistent."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, or belongs to something else."""


def format_bytes(n: int | None) -> str:
    """``1536`` -> ``'1.5 KiB'``; None -> ``'an unknown amount'``."""
    if n is None:
        return "an unknown amount"
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class DiskFullError(UserError):
    """The disk or the user's quota ran out while writing ``path`` (or, checked up front,
    cannot hold what a run will write): one line naming the path, the bytes needed and the
    bytes free. The write left nothing behind: what was there before is intact."""

    def __init__(self, path, needed: int | None, free: int | None, hint: str = "", *,
                 reason: str = "no space left on device", what: str | None = None,
                 at_least: bool = False):
        self.path, self.needed, self.free, self.reason = path, needed, free, reason
        self.what, self.at_least = what or f"writing {path}", at_least
        self.hint = hint or "free space on that disk or write elsewhere"
        need = ("needs at least " if at_least else "needs ") + format_bytes(needed) \
            if needed is not None else "ran out of space"
        super().__init__(f"{reason}: {self.what} {need}, {format_bytes(free)} free there; "
                         f"{self.hint}")

    def with_hint(self, hint: str) -> DiskFullError:
        """The same facts with another fix (what the caller knows is intact, how to resume)."""
        return DiskFullError(self.path, self.needed, self.free, hint, reason=self.reason,
                             what=self.what, at_least=self.at_least)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad arguments as a single line (and exit code 2)."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv=None) -> int:
    """Run a CLI main function; a UserError becomes one line on stderr and exit code 2."""
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
