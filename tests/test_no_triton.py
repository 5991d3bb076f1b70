"""Without Triton (macOS, Windows, a CPU-only install) every command still works: the
library imports with torch alone and the fused kernels are a one-line error when asked for.

Each command runs in a subprocess whose ``import triton`` fails (a ``sitecustomize`` on its
path maps the module to None before anything else is imported)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import tiny_mnist


def _without_triton(tmp_path):
    site = tmp_path / "no-triton-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['triton'] = None\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300)

    return run


@pytest.mark.slow
def test_train_sample_export_evaluate_without_triton(tmp_path):
    run = _without_triton(tmp_path)
    probe = run("-c", "import triton")
    assert probe.returncode != 0 and "import of triton halted" in probe.stderr  # hidden
    tiny_mnist(tmp_path / "data", n=64, seed=3)
    common = ["--dataset", "mnist", "--data-dir", "data", "--batch-size", "16",
              "--max-steps", "4", "--no-progress"]
    for model in ("dcgan", "wgan-gp"):  # spectral norm and the gradient penalty
        proc = run("-m", "gan_accel.train", "--model", model, "--spectral-norm",
                   "--out", f"run-{model}", *common)
        assert proc.returncode == 0, proc.stderr
        assert "kernels: auto -> PyTorch reference ops" in proc.stdout
    proc = run("-m", "gan_accel.sample", "--checkpoint", "run-dcgan", "--n", "16",
               "--out", "grid.png")
    assert proc.returncode == 0 and (tmp_path / "grid.png").is_file(), proc.stderr
    proc = run("-m", "gan_accel.export", "--checkpoint", "run-dcgan", "--out", "g.onnx")
    assert proc.returncode == 0 and (tmp_path / "g.onnx").is_file(), proc.stderr
    proc = run("-m", "gan_accel.evaluate", "--onnx", "g.onnx", "--dataset", "mnist-5k",
               "--n", "100", "--kid-subsets", "2", "--out", "eval.json")
    assert proc.returncode == 0 and (tmp_path / "eval.json").is_file(), proc.stderr


def test_asking_for_the_triton_kernels_without_triton_is_one_line(tmp_path):
    run = _without_triton(tmp_path)
    proc = run("-m", "gan_accel.train", "--kernels", "triton", "--max-steps", "1",
               "--out", "r", "--no-progress")
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert "--kernels triton" in err and "pip install triton" in err, err
    assert not (tmp_path / "r").exists()


def test_the_library_imports_without_triton(tmp_path):
    run = _without_triton(tmp_path)
    proc = run("-c", "import gan_accel.variants, gan_accel.training, gan_accel.kernels as k, "
                     "gan_accel.evaluation, gan_accel.export.onnx_export; "
                     "print(k.has_triton())")
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
