"""IEEE-rounded fp32 square root and division for the kernels.

On CUDA, Triton lowers ``tl.sqrt`` on fp32 to ``sqrt.approx.f32`` and ``a / b`` to
``div.full.f32`` (both a few ulp off); PyTorch's kernels (no fast-math) use the correctly
rounded ``sqrt.rn`` / ``div.rn``. The kernels use the rounded versions: they run a handful of
times per row or vector, and once per element only in memory-bound passes, where the extra
instructions hide behind the loads; in exchange the norms, ``u``/``v`` and ``W / sigma`` round
like PyTorch's (over many chained power iterations too). fp64's ``sqrt`` and ``/`` are
correctly rounded already. The interpreter computes both with numpy either way.
"""

import triton
import triton.language as tl


# sqrt(x), rounded to nearest
@triton.jit
def ieee_sqrt(x):
    if x.dtype == tl.float32:
        return tl.sqrt_rn(x)
    else:
        return tl.sqrt(x)


# a / b, rounded to nearest
@triton.jit
def ieee_div(a, b):
    if a.dtype == tl.float32:
        return tl.div_rn(a, b)
    else:
        return a / b
