"""The trainer: parameter counts, eager vs compiled, checkpoints and exact resume."""

import json

import pytest
import torch
from helpers import tiny_mnist

from gan_accel.checkpoints import flatten_state, list_checkpoints, unflatten_state
from gan_accel.training.trainer import Trainer, count_params
from gan_accel.variants import Batch, build_variant, recipe_config


def quiet(*_):
    pass


def tiny_data(tmp_path):
    """200 random 28x28 images as an IDX folder: 5 batches of 40 per epoch, fast steps."""
    folder = tmp_path / "data"
    if not folder.is_dir():
        tiny_mnist(folder, n=200, seed=1)
    return str(folder)


def make(tmp_path, name="run", **kw):
    kw = {"progress": False, "log_every": 1, "dataset": "mnist", "data_dir": tiny_data(tmp_path),
          **kw}
    cfg = recipe_config(kw.pop("model", "dcgan"), "paper", out=str(tmp_path / name),
                             **kw)
    return Trainer(cfg, log=quiet)


def test_seed_dcgan_parameter_counts():
    cfg = recipe_config("dcgan")
    v = build_variant(cfg)
    assert count_params(v.G) == 172_608
    assert count_params(v.D) == 142_208  # BN + SN
    v_sn_only = build_variant(recipe_config("dcgan", d_batch_norm=False))
    assert count_params(v_sn_only.D) == 141_824
    v_plain = build_variant(recipe_config("dcgan", spectral_norm=False))
    assert count_params(v_plain.D) == 142_208  # SN adds buffers, not parameters


def test_paper_recipe_carries_seed_hyperparameters():
    cfg = recipe_config("dcgan", "paper")
    assert (cfg.lr_d, cfg.lr_g, cfg.beta1, cfg.beta2) == (5e-4, 2e-4, 0.5, 0.99)
    assert (cfg.batch_size, cfg.real_label) == (64, 0.9)
    assert (cfg.plateau_factor, cfg.plateau_patience) == (0.8, 5)
    t = Trainer(recipe_config("dcgan", "paper", out="/tmp/unused", progress=False),
                log=quiet)
    assert len(t.data) == 5000  # the embedded subset is the default
    assert set(t.scheds) == {"D", "G"}
    assert t.optims["D"].param_groups[0]["betas"] == (0.5, 0.99)
    assert t.optims["D"].param_groups[0]["lr"] == 5e-4


def _phase_outputs(trainer, compiled):
    torch.manual_seed(0)
    real = torch.rand(8, 1, 28, 28)
    labels = torch.arange(8) % 10
    latent = trainer.variant.latent.sample(8, "cpu", torch.Generator().manual_seed(1))
    out = {}
    for ph in trainer.phases:
        fn = torch.compile(ph.loss, fullgraph=True) if compiled else ph.loss
        for p in trainer.variant.parameters():
            p.grad = None
        loss, _ = fn(Batch(real, labels, latent))
        loss.backward()
        out[ph.name] = (loss.detach(), [p.grad.clone() for p in ph.params])
    return out


@pytest.mark.slow  # compiles every phase of a variant: 35 s with empty caches
def test_compiled_phases_match_eager(tmp_path):
    """Same weights, same batch: compiled D/G losses and gradients equal eager ones.

    Tolerance: rtol 1e-4, atol 1e-5 (Inductor reorders float32 reductions).
    """
    t = make(tmp_path)
    state = {k: v.clone() for k, v in t.variant.state_dict().items()}
    eager = _phase_outputs(t, compiled=False)
    t.variant.load_state_dict(state)  # BN running stats / SN vectors back to the start
    comp = _phase_outputs(t, compiled=True)
    for name in eager:
        torch.testing.assert_close(comp[name][0], eager[name][0], rtol=1e-4, atol=1e-5)
        for ge, gc in zip(eager[name][1], comp[name][1], strict=True):
            torch.testing.assert_close(gc, ge, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compiled_training_tracks_eager(tmp_path):
    """Three full steps from the same init: losses agree within 1e-3 relative, and weights
    within 2e-4 absolute (Adam's first steps move each weight by up to lr, so sign flips of
    near-zero gradients bound the attainable agreement to a fraction of 3 x lr = 6e-4)."""
    runs = {}
    for compiled in (False, True):
        t = make(tmp_path, f"c{compiled}", batch_size=16, max_steps=3, compile=compiled)
        t.fit()
        rows = [json.loads(x) for x in (t.run_dir / "metrics.jsonl").read_text().splitlines()]
        runs[compiled] = (t.variant.state_dict(), [r for r in rows if r["kind"] == "train"])
    (sa, ra), (sb, rb) = runs[False], runs[True]
    for a, b in zip(ra, rb, strict=True):
        for key in ("loss_d", "loss_g"):
            assert b[key] == pytest.approx(a[key], rel=1e-3), (a["step"], key)
    for k in sa:
        if sa[k].is_floating_point():
            torch.testing.assert_close(sb[k], sa[k], rtol=0, atol=2e-4, msg=k)


def test_checkpoint_state_roundtrip():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))])
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    tensors = {}
    skel = flatten_state(opt.state_dict(), "o", tensors)
    json.dumps(skel)
    back = unflatten_state(json.loads(json.dumps(skel)), tensors)
    assert back["param_groups"] == opt.state_dict()["param_groups"]
    assert torch.equal(back["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_checkpoint_writes_weights_samples_and_curves(tmp_path):
    t = make(tmp_path, batch_size=40, epochs=2, ema=0.9)
    t.fit()
    run = t.run_dir
    assert (run / "samples.png").stat().st_size > 1000
    assert (run / "loss.png").stat().st_size > 1000
    assert (run / "samples" / "epoch_002.png").is_file()
    assert [p.name for p in list_checkpoints(run)][-1] == "ckpt-00000010.json"
    meta = json.loads((run / "checkpoints" / "ckpt-00000010.json").read_text())
    assert meta["position"]["step"] == 10 and meta["config"]["model"] == "dcgan"
    from gan_accel.checkpoints import load_trained

    v, meta = load_trained(run, ema=False)
    assert not meta["ema"]
    for k, p in t.variant.G.state_dict().items():
        assert torch.equal(v.G.state_dict()[k], p)
    v_ema, meta = load_trained(run)  # the EMA generator is the default
    assert meta["ema"]
    diff = [not torch.equal(v_ema.G.state_dict()[k], p) for k, p in t.variant.G.state_dict()
            .items() if p.is_floating_point()]
    assert any(diff)  # the EMA copy is a different (averaged) generator


def test_resume_continues_identically(tmp_path):
    """Stop mid-epoch (step 7 of 5-batch epochs), resume, and end bit-identical to an
    uninterrupted run: data order, noise RNG, optimizers, schedulers, EMA all restored."""
    kw = {"batch_size": 40, "epochs": 3, "ema": 0.9, "plateau_patience": 0,
          "plateau_factor": 0.5}
    full = make(tmp_path, "full", **kw)
    full.fit()
    part = make(tmp_path, "part", max_steps=7, **kw)
    part.fit()
    cfg = recipe_config("dcgan", out=str(tmp_path / "part"), progress=False, log_every=1,
                             dataset="mnist", data_dir=tiny_data(tmp_path), **kw)
    resumed = Trainer(cfg, log=quiet, resume_from=tmp_path / "part")
    assert resumed.pos.step == 7 and resumed.pos.batch == 2
    resumed.fit()
    sa, sb = full.variant.state_dict(), resumed.variant.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    for k, v in full.ema.state_dict().items():
        assert torch.equal(v, resumed.ema.state_dict()[k]), k
    lr_full = full.optims["D"].param_groups[0]["lr"]
    assert lr_full == resumed.optims["D"].param_groups[0]["lr"]


def test_a_compiled_cpu_run_says_nothing_about_cuda_home(tmp_path, monkeypatch, caplog,
                                                         request):
    """Inductor's C++ backend looks for CUDA_HOME; on a CPU run its 'No CUDA runtime is found'
    warning is noise the user cannot act on, so a compiled CPU trainer silences it."""
    import logging

    from torch.utils import cpp_extension

    logger = logging.getLogger(cpp_extension.__name__)
    request.addfinalizer(lambda level=logger.level: logger.setLevel(level))
    logger.setLevel(logging.WARNING)  # as in a fresh process (setLevel clears level caches)
    monkeypatch.setattr(logger, "handlers", [caplog.handler])
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))  # a CUDA_HOME that exists, no runtime
    make(tmp_path, compile=True)
    cpp_extension._find_cuda_home()
    assert "No CUDA runtime" not in caplog.text
    logger.setLevel(logging.WARNING)  # and the check sees the warning when nothing silences it
    cpp_extension._find_cuda_home()
    assert "No CUDA runtime" in caplog.text
