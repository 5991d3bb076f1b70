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
