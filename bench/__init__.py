"""Benchmarks for gan-accel: ``python -m gan_accel.bench [SUITE ...]`` (see :mod:`bench.__main__`).

Suites: ``inference`` (eager vs torch.compile vs ONNX Runtime), ``train`` (one full training
step per variant), ``kernels`` (fused Triton kernels vs PyTorch), ``profile`` (a
torch.profiler trace of compiled training steps) and ``quality`` (sample quality,
:mod:`bench.quality`). Results land in ``bench/results/`` as JSON, markdown and PNG;
``python -m gan_accel.bench report FILE...`` redraws or compares them.
"""
