"""Shared setup for the kernels tests.

TRITON_INTERPRET must be in the environment before triton is imported (triton.jit reads it at
decoration time). ``tests/conftest.py`` sets it to "1" when no CUDA device exists, so the
Triton kernels run on CPU tensors through the interpreter; on a CUDA machine the same tests
run the compiled kernels on CUDA tensors (the ``dev`` fixture). Tests marked ``triton``
(``needs_triton``) skip only where neither is possible. Nothing here queries the device at
import time.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # for _gan_kernels_testutils (any import mode)

import pytest  # noqa: E402
import torch  # noqa: E402
from _gan_kernels_testutils import triton_device, triton_runnable  # noqa: E402


def pytest_runtest_setup(item):
    if item.get_closest_marker("triton") is not None and not triton_runnable():
        pytest.skip("the Triton kernels need the interpreter (TRITON_INTERPRET=1 set before the "
                    "kernels were imported; tests/conftest.py sets it without CUDA) or a CUDA "
                    "device")


@pytest.fixture
def dev() -> torch.device:
    """Where these tests put their tensors: CUDA when the kernels are compiled for it, else
    the CPU (the interpreter, or the reference alone)."""
    return triton_device()


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same RNG state."""
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _exact_cuda_reference():
    """On CUDA: full fp32 matmuls/convolutions and deterministic cuDNN, so the reference and
    the kernels differ only by summation order (flags only: no device is touched)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
           torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = old
