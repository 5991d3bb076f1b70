"""Entry point: ``python -m gan_accel.export`` runs :mod:`gan_accel.cli.export`."""

import sys

from ..cli.export import main
from ..errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
