"""impl="auto"|"triton"|"torch" resolution and the once-per-op announcement."""

from __future__ import annotations

import warnings

import pytest
import torch
from gan_accel.kernels import _launch as _dispatch
from gan_accel.kernels import gp_norm_penalty, resolve_impl, spectral_norm
from torch import nn

from gan_accel import kernels


@pytest.fixture
def fresh_announcements(monkeypatch):
    monkeypatch.setattr(_dispatch, "_announced", set())


def test_public_api_exports():
    for name in (
        "spectral_norm",
        "gp_norm_penalty",
        "resolve_impl",
        "torch_spectral_norm",
        "triton_spectral_norm",
        "torch_gp_norm_penalty",
        "triton_gp_norm_penalty",
    ):
        assert callable(getattr(kernels, name)), name
        assert getattr(kernels, name).__doc__, f"{name} has no docstring"


def test_auto_on_cpu_picks_torch_and_says_so_once(fresh_announcements):
    with pytest.warns(_dispatch.ImplChoiceWarning, match=r"myop impl='auto' -> running the torch"):
        assert resolve_impl("auto", torch.zeros(1), "myop") == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second announcement would raise
        assert resolve_impl("auto", torch.device("cpu"), "myop") == "torch"
    with pytest.warns(_dispatch.ImplChoiceWarning, match="otherop"):
        resolve_impl("auto", "cpu", "otherop")


def test_auto_on_cuda_device_picks_triton(fresh_announcements):
    # device objects only: nothing is allocated, so this runs without a GPU
    with pytest.warns(_dispatch.ImplChoiceWarning, match="running the triton"):
        assert resolve_impl("auto", torch.device("cuda", 0), "cudaop") == "triton"


def test_explicit_choices_and_errors(monkeypatch):
    assert resolve_impl("torch", torch.zeros(1), "op") == "torch"
    with pytest.raises(ValueError, match="impl must be one of"):
        resolve_impl("cuda", torch.zeros(1), "op")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_impl("triton", torch.zeros(1), "op") == "triton"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        resolve_impl("triton", torch.zeros(1), "op")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        gp_norm_penalty(torch.randn(2, 3), impl="triton")


def test_public_ops_announce_auto(fresh_announcements):
    with pytest.warns(_dispatch.ImplChoiceWarning, match="gp_norm_penalty"):
        gp_norm_penalty(torch.randn(3, 4))
    with pytest.warns(_dispatch.ImplChoiceWarning, match="spectral_norm"):
        spectral_norm(nn.Linear(3, 4))  # registration runs one forward


def test_auto_is_announced_under_compile(fresh_announcements):
    """Under torch.compile the announcement happens at trace time, without a graph break."""
    fn = torch.compile(lambda g: gp_norm_penalty(g), fullgraph=True, backend="eager")
    with pytest.warns(_dispatch.ImplChoiceWarning, match="gp_norm_penalty"):
        fn(torch.randn(3, 4))
