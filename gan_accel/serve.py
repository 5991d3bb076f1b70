"""Entry point: ``python -m gan_accel.serve`` runs :mod:`gan_accel.cli.serve`."""

import sys

from .cli.serve import main
from .errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
