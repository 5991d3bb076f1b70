"""gan-accel: fast, measurable GANs on MNIST-like data.

The library core (config, data, models, variants, trainer, checkpoints) lives here. The
``kernels``, ``export`` and ``bench`` packages build on it; only the command-line entry points
(``gan_accel.train``, ``gan_accel.export``, ``gan_accel.cli``) load them, lazily.
"""

__version__ = "0.1.0"
