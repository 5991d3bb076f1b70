"""Entry point: ``python -m gan_accel.train`` runs :mod:`gan_accel.cli.train`."""

import sys

from .cli.train import main
from .errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
