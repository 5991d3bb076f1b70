"""The kernels build for Hopper (sm_90a) without a GPU, with no register spills.

The interpreter runs the kernels' arithmetic on CPU but never compiles them: this test does,
for the launches the CUDA tile configuration makes (``_sm90_build.py --quick``: each kernel
once, from the seed D's largest weight, a large weight, and the penalty at batch 64 and 4096),
through ``triton.compile`` for ``GPUTarget("cuda", 90, 32)`` and the bundled ``ptxas -v``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("_sm90_build.py")


@pytest.mark.slow  # builds every kernel for sm_90a: 9 s
def test_every_kernel_builds_for_sm90a_without_spills():
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode == 2 and "no ptxas" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    failed = [f"{r['kernel']} {r['constexprs']}: {r['error']}" for r in rows if not r["ok"]]
    assert proc.returncode == 0 and not failed, "\n".join(failed) or proc.stderr[-3000:]
    kernels = {r["kernel"] for r in rows}
    assert {"_sn_fwd_kernel", "_sn_bwd_kernel", "_sn_rows_kernel", "_sn_cols_kernel",
            "_sn_scale_kernel", "_sn_bwd_rows_kernel", "_sn_bwd_tile_kernel",
            "_gp_fwd_kernel", "_gp_bwd_kernel"} <= kernels, kernels
    spilled = [f"{r['kernel']} {r['options']} {r['constexprs']}: {r['spill_stores']} B spilled, "
               f"{r['stack_frame']} B stack" for r in rows
               if r["spill_stores"] or r["stack_frame"]]
    assert not spilled, "register spills on sm_90a:\n" + "\n".join(spilled)
