"""The improved-GAN layers: virtual batch norm."""

from __future__ import annotations

import torch
from gan_accel.export.onnx_export import export_generator
from gan_accel.export.runtime import CPU, OnnxGenerator

from gan_accel.models.layers import FixedBatchGenerator, VirtualBatchNorm
from gan_accel.training.trainer import count_params
from gan_accel.variants import build_variant, recipe_config


def _variant(model="dcgan", **kw):
    torch.manual_seed(0)
    return build_variant(recipe_config(model, virtual_batch_norm=True, **kw))


def test_vbn_replaces_every_batchnorm_of_g_and_keeps_the_parameter_count():
    plain = build_variant(recipe_config("dcgan"))
    v = _variant()
    assert isinstance(v.G, FixedBatchGenerator)
    kinds = {type(m) for m in v.G.modules()}
    assert VirtualBatchNorm in kinds and not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in v.G.modules())
    assert count_params(v.G) == count_params(plain.G) == 172_608


def test_a_sample_does_not_depend_on_the_rest_of_its_minibatch():
    """The point of VBN: in training mode, sample 0's image is the same whatever the other
    samples of the batch are (with BatchNorm it changes)."""
    for model in ("dcgan", "gan"):
        v = _variant(model)
        v.G.train()
        gen = torch.Generator().manual_seed(1)
        a = v.latent.sample(6, "cpu", gen)
        b = v.latent.sample(6, "cpu", gen)
        mixed = {k: torch.cat([a[k][:1], b[k][1:]]) for k in a}
        with torch.no_grad():
            torch.testing.assert_close(v.G(**a)[0], v.G(**mixed)[0], rtol=1e-5, atol=1e-6)
        plain = build_variant(recipe_config(model))
        plain.G.train()
        with torch.no_grad():
            assert not torch.allclose(plain.G(**a)[0], plain.G(**mixed)[0], atol=1e-4)


def test_eval_uses_the_fixed_batch_statistics_of_the_last_training_pass(tmp_path):
    v = _variant()
    gen = torch.Generator().manual_seed(2)
    z = v.latent.sample(5, "cpu", gen)
    v.G.train()
    with torch.no_grad():
        train_out = v.G(**z)
    v.G.eval()
    with torch.no_grad():
        eval_out = v.G(**z)
    torch.testing.assert_close(eval_out, train_out, rtol=1e-5, atol=1e-6)
    report = export_generator(v, tmp_path / "vbn.onnx")  # and it exports with parity
    assert max(report["max_abs_err"].values()) <= 1e-5
    gen_onnx = OnnxGenerator(tmp_path / "vbn.onnx", providers=[CPU])
    feeds = {k: t.numpy() for k, t in z.items()}
    assert abs(gen_onnx.run(**feeds) - eval_out.numpy()).max() <= 1e-5
