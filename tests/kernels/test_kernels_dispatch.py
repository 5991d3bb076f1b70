"""impl="auto"|"triton"|"torch" resolution and the once-per-op announcement."""

from __future__ import annotations

import warnings

import pytest
import torch
from _gan_kernels_testutils import needs_triton
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


# ------------------------------------------------------------------ tile configurations


def test_tile_config_defaults_override_and_env(monkeypatch):
    monkeypatch.delenv(_dispatch.TILES_ENV, raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert _dispatch.tile_config(cpu).name == "interpreter"
    assert _dispatch.tile_config(cuda).name == "cuda"
    with _dispatch.use_tiles("tiny") as cfg:
        assert cfg.name == "tiny" and _dispatch.tile_config(cuda) is cfg
        with _dispatch.use_tiles(_dispatch.Tiles.CUDA):
            assert _dispatch.tile_config(cpu).name == "cuda"
        assert _dispatch.tile_config(cpu).name == "tiny"  # the outer one is back
    assert _dispatch.tile_config(cpu).name == "interpreter"
    monkeypatch.setenv(_dispatch.TILES_ENV, "CUDA")
    assert _dispatch.tile_config(cpu).name == "cuda"
    monkeypatch.setenv(_dispatch.TILES_ENV, "auto")
    assert _dispatch.tile_config(cpu).name == "interpreter"
    monkeypatch.setenv(_dispatch.TILES_ENV, "huge")
    with pytest.raises(ValueError, match=r"GAN_ACCEL_TILES: unknown tile configuration 'huge'"):
        _dispatch.tile_config(cpu)
    with pytest.raises(ValueError, match="choose from cuda, interpreter, tiny"):
        _dispatch.use_tiles("nope").__enter__()


def test_tile_configs_are_powers_of_two():
    for cfg in _dispatch.TILE_CONFIGS.values():
        for field, value in vars(cfg).items():
            if field.startswith(("sn_", "gp_")) and field not in ("sn_multi_min",
                                                                  "gp_single_max",
                                                                  "sn_programs"):
                assert value > 0 and value & (value - 1) == 0, (cfg.name, field, value)


def test_block_helpers():
    assert [_dispatch.next_power_of_2(n) for n in (0, 1, 2, 3, 1023, 1024, 1025)] == \
        [1, 1, 2, 4, 1024, 1024, 2048]
    assert [_dispatch.prev_power_of_2(n) for n in (0, 1, 3, 4, 1023)] == [1, 1, 2, 4, 512]
    assert [_dispatch.cdiv(a, 4) for a in (1, 4, 5, 8, 9)] == [1, 1, 2, 2, 3]


# ------------------------------------------------------------------ the eager direct path


def test_eager_direct_path_only_for_plain_eager_tensors():
    """Plain tensors in eager mode call the launchers directly; anything that traces, fakes
    or intercepts ops (torch.compile, FakeTensorMode, dispatch modes) gets the custom op."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    x, p = torch.randn(3), nn.Parameter(torch.randn(3))
    assert _dispatch.eager_direct_ok(x, p, None)
    with FlopCounterMode(display=False):
        assert not _dispatch.eager_direct_ok(x)
    with FakeTensorMode() as mode:
        fake = mode.from_tensor(x)
        assert not _dispatch.eager_direct_ok(fake)
    seen = []

    def probe(t):
        seen.append(_dispatch.eager_direct_ok(t))
        return t + 1

    torch.compile(probe, backend="eager", fullgraph=True)(x)
    assert seen == [False], seen


@needs_triton
def test_registered_op_path_matches_direct_path(monkeypatch, dev):
    """The custom-op path (what compile and opcheck run) and the direct path give the same
    bits, and both bump the u/v buffers' versions."""
    from gan_accel.kernels import fused_spectral_norm as sn
    from gan_accel.kernels import grad_penalty as gp

    w = torch.randn(7, 13, requires_grad=True, device=dev)
    g = torch.randn(6, 5, requires_grad=True, device=dev)
    results = {}
    for direct in (True, False):
        monkeypatch.setattr(sn, "eager_direct_ok", lambda *t, _d=direct: _d)
        monkeypatch.setattr(gp, "eager_direct_ok", lambda *t, _d=direct: _d)
        u = torch.ones(7, device=dev) / 7**0.5
        v = torch.ones(13, device=dev) / 13**0.5
        version = u._version
        out = sn.triton_spectral_norm(w, u, v, 1, 1e-12, 0, True)
        (dw,) = torch.autograd.grad(out, w, torch.ones_like(out))
        pen = gp.triton_gp_norm_penalty(g)
        (dg,) = torch.autograd.grad(pen, g)
        assert u._version > version, f"direct={direct}: u's version was not bumped"
        results[direct] = (out, u, v, dw, pen, dg)
    for a, b in zip(results[True], results[False], strict=True):
        assert torch.equal(a, b)
