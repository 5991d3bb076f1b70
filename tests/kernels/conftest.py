"""Shared setup for the kernels tests.

TRITON_INTERPRET must be in the environment before triton is imported (triton.jit reads it at
decoration time). ``tests/conftest.py`` sets it to "1" when no CUDA device exists, so the
Triton kernels run on CPU tensors through the interpreter; on a CUDA machine the compiled
kernels run (the interpreter-only tests then skip and the CUDA tests run).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # for _gan_kernels_testutils (any import mode)

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same RNG state."""
    torch.manual_seed(0)
    yield
