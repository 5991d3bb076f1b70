"""Test-wide setup: Triton runs through its CPU interpreter unless a CUDA device exists.

TRITON_INTERPRET must be set before triton is first imported, hence here at the top.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(min(2, os.cpu_count() or 1))
