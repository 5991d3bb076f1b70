"""Entry point: ``python -m gan_accel.sample`` runs :mod:`gan_accel.cli.sample`."""

import sys

from .cli.sample import main
from .errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
