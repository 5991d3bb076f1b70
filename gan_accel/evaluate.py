"""Entry point: ``python -m gan_accel.evaluate`` runs :mod:`gan_accel.cli.evaluate`."""

import sys

from .cli.evaluate import main
from .errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
