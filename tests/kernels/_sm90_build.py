"""Build every kernel launch of the CUDA tile configuration for Hopper (sm_90a) on a machine
without a GPU, and read ptxas's resource report: registers, spills, stack.

Run as its own process (it must import triton with TRITON_INTERPRET off)::

    python tests/kernels/_sm90_build.py            # a table; exit 1 if a build fails
    python tests/kernels/_sm90_build.py --json     # one JSON object per launch
    python tests/kernels/_sm90_build.py --quick    # each kernel once (what the CI test builds)

The launchers run on CPU tensors with the kernels swapped for recorders, so the recorded
launches (grids aside) carry exactly the block sizes, flags, warps and pipeline depths the
GPU would get for these cases; each distinct one is then compiled with ``triton.compile`` for
``GPUTarget("cuda", 90, 32)`` and its PTX passed through the bundled ``ptxas -v``.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "0"  # before triton is imported

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import triton  # noqa: E402

PTXAS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
         torch.float64: "fp64", torch.int32: "i32", torch.int64: "i64"}

# (weight shape, dim, dtype); the seed D's four weights, a ConvTranspose layout, InfoGAN's
# head, low precision, and two large matrices that take the multi-program path
SN_CASES = [((32, 1, 4, 4), 0, torch.float32), ((64, 32, 2, 2), 0, torch.float32),
            ((128, 64, 4, 4), 0, torch.float32), ((1, 128, 4, 4), 0, torch.float32),
            ((10, 2048), 0, torch.float32), ((128, 64, 4, 4), 1, torch.float32),
            ((64, 32, 2, 2), 0, torch.bfloat16), ((1024, 9216), 0, torch.float32),
            ((256, 512, 3, 3), 1, torch.float32)]
GP_CASES = [((64, 784), torch.float32), ((4096, 784), torch.float32),
            ((64, 12288), torch.float32), ((3, 5000), torch.float32),
            ((64, 784), torch.bfloat16)]
# --quick (the CI test): each kernel once, fp32: the seed D's largest weight (one program),
# a large one (several programs), the penalty at batch 64 (one program) and 4096 (several)
QUICK_SN = [((128, 64, 4, 4), 0, torch.float32), ((1024, 9216), 0, torch.float32)]
QUICK_GP = [((64, 784), torch.float32), ((4096, 784), torch.float32)]


class _Recorder:
    def __init__(self, fn, log):
        self.fn, self.log = fn, log

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.log.append((self.fn, args, kwargs))
        return launch


def _arg_type(value) -> str:
    if isinstance(value, torch.Tensor):
        return "*" + TYPES[value.dtype]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"unexpected kernel argument {value!r}")


def _run_cases(sn, gp, quick: bool) -> None:
    for shape, dim, dtype in QUICK_SN if quick else SN_CASES:
        w = torch.randn(shape).to(dtype)
        h, k, _, _ = sn._matrix_layout(w, dim)
        u, v = torch.randn(h).to(dtype), torch.randn(k).to(dtype)
        for training, n_iter in ((True, 1), (False, 1)) if quick else ((True, 1), (True, 2),
                                                                       (False, 1)):
            _, sigma, uu, vv = sn.spectral_norm_forward(w, u, v, n_iter, 1e-12, dim, training)
        sn.spectral_norm_backward(torch.randn(shape).to(dtype), w, uu, vv, sigma, dim)
    for shape, dtype in QUICK_GP if quick else GP_CASES:
        g = torch.randn(shape).to(dtype)
        _, norms = gp.gp_norm_penalty_forward(g)
        for gn in (None,) if quick else (None, torch.randn(shape[0])):
            gp.gp_norm_penalty_backward(g, norms, torch.tensor(1.0, dtype=dtype), gn)


def record_launches(quick: bool = False, tiles: str = "cuda") -> list[dict]:
    """Every distinct launch (kernel, signature, constexprs, warps) of the cases above."""
    from gan_accel.kernels import _launch
    from gan_accel.kernels import fused_spectral_norm as sn
    from gan_accel.kernels import grad_penalty as gp

    log: list = []
    originals = []
    for module in (sn, gp):
        originals.append((module, "check_triton_device", module.check_triton_device))
        module.check_triton_device = lambda *a, **k: None
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, triton.runtime.JITFunction) and name.endswith("_kernel"):
                originals.append((module, name, obj))
                setattr(module, name, _Recorder(obj, log))
    try:
        with _launch.use_tiles(tiles):
            _run_cases(sn, gp, quick)
    finally:
        for module, name, obj in originals:
            setattr(module, name, obj)
    seen, launches = set(), []
    for fn, args, kwargs in log:
        options = {k: kwargs[k] for k in ("num_warps", "num_stages") if k in kwargs}
        constexprs = {k: v for k, v in kwargs.items() if k not in options}
        names = [n for n in fn.arg_names if n not in constexprs]
        signature = dict(zip(names, map(_arg_type, args), strict=True))
        key = (fn.__name__, tuple(signature.items()), tuple(map(str, constexprs.items())),
               tuple(options.items()))
        if key not in seen:
            seen.add(key)
            launches.append(dict(kernel=fn.__name__, module=fn.__module__, signature=signature,
                                 constexprs=constexprs, options=options))
    return launches


def build(launch: dict) -> dict:
    """Compile one launch for sm_90a; ptxas's registers / spill bytes / stack frame."""
    import importlib

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(launch["module"]), launch["kernel"])
    constexprs = launch["constexprs"]
    signature = {n: ("constexpr" if n in constexprs else launch["signature"][n])
                 for n in fn.arg_names}
    row = {"kernel": launch["kernel"], "options": launch["options"],
           "constexprs": {k: str(v) for k, v in constexprs.items()},
           "dtypes": sorted({t for t in launch["signature"].values() if t.startswith("*")})}
    try:
        src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
        compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                                  options=launch["options"])
        with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
            f.write(compiled.asm["ptx"])
        out = subprocess.run([str(PTXAS), "-arch=sm_90a", "-v", f.name, "-o", os.devnull],
                             capture_output=True, text=True, timeout=300)
        os.unlink(f.name)
        report = out.stdout + out.stderr
        if out.returncode:
            return {**row, "ok": False, "error": report[-2000:]}
        num = lambda pat: int(m.group(1)) if (m := re.search(pat, report)) else None  # noqa: E731
        return {**row, "ok": True, "registers": num(r"Used (\d+) registers"),
                "spill_stores": num(r"(\d+) bytes spill stores"),
                "spill_loads": num(r"(\d+) bytes spill loads"),
                "stack_frame": num(r"(\d+) bytes stack frame")}
    except Exception as exc:  # noqa: BLE001 - a failed build is a row
        return {**row, "ok": False, "error": f"{type(exc).__name__}: {exc}"[-2000:]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per launch")
    parser.add_argument("--jobs", type=int, default=2, help="parallel builds (default: 2)")
    parser.add_argument("--quick", action="store_true", help="each kernel once (the CI test)")
    parser.add_argument("--tiles", default="cuda", choices=("cuda", "tiny"),
                        help="the tile configuration whose launches are built (default: cuda; "
                             "tiny: what the forced-tile tests compile on a GPU)")
    args = parser.parse_args(argv)
    if not PTXAS.is_file():
        print(f"no ptxas in this triton ({PTXAS})", file=sys.stderr)
        return 2
    launches = record_launches(args.quick, args.tiles)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(build, launches))
    for r in rows:
        if args.json:
            print(json.dumps(r))
        elif r["ok"]:
            print(f"{r['kernel']:<22} regs {r['registers']:>3}  spill {r['spill_stores']:>4} B  "
                  f"stack {r['stack_frame']:>4} B  {r['options']}  {r['constexprs']}")
        else:
            print(f"{r['kernel']:<22} BUILD FAILED: {r['error']}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
