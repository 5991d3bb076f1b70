"""The early ISA checks leave Inductor nothing to build when it picks its vector ISA."""

import platform
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                       reason="Inductor builds ISA checks on x86 only"),
    pytest.mark.slow,  # a fresh interpreter importing Inductor: ~6 s
]

SCRIPT = """
from torch._inductor import cpu_vec_isa
from gan_accel.training.inductor_warmup import start_cpu_isa_checks

start_cpu_isa_checks().join()

def no_build(self, code):
    raise AssertionError(f"Inductor built an ISA check for {self} after the warm-up")

cpu_vec_isa.VecISA.check_build = no_build
print("picked", cpu_vec_isa.pick_vec_isa(), "of", cpu_vec_isa.valid_vec_isa_list())
"""


def test_inductor_picks_its_isa_from_the_checks_already_run():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "picked" in out.stdout
