"""The architecture registry: parameter counts against the papers' tables, shapes at every
size, the choices of ``--arch auto``, the pairs that make no sense, and the seed nets
unchanged bit for bit."""

from __future__ import annotations

import hashlib

import pytest
import torch
from gan_accel.kernels.ops import SpectralNorm
from torch import nn
from torch.nn.utils import parametrize

from gan_accel.cli.train import main as train_main
from gan_accel.errors import UserError, run_cli
from gan_accel.models import Arch
from gan_accel.models.builders import NetShape, build_discriminator, build_generator
from gan_accel.ops import build_ops
from gan_accel.ranges import OutputRange
from gan_accel.training.trainer import count_params
from gan_accel.variants import VARIANTS, base, build_variant, recipe_config, resolve_arch

SCALED = [a for a in Arch if a is not Arch.TINY]


def _count(layers: list[tuple[str, int]]) -> int:
    return sum(n for _, n in layers)


def _conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def _dense(a, b, bias=True):
    return a * b + (b if bias else 0)


def _bn(c):
    return 2 * c


def _nets(model, arch, resolution, channels=3, **kw):
    """G and D parameter counts of ``model`` on ``arch`` at the paper's widths."""
    v = build_variant(recipe_config(model, arch=arch, resolution=resolution, channels=channels,
                                    spectral_norm=False, **kw))
    return count_params(v.G), count_params(v.D)


# -- parameter counts ---------------------------------------------------------------------
def test_radford_dcgan_64_rgb_matches_the_published_counts():
    """PyTorch's DCGAN tutorial configuration (nz 100, ngf = ndf = 64, 64x64 RGB)."""
    assert _nets("dcgan", "dcgan", 64) == (3_576_704, 2_765_568)
    v = build_variant(recipe_config("dcgan", resolution=64, channels=3))
    assert (v.cfg.latent_dim, v.cfg.ngf, v.cfg.ndf) == (100, 64, 64)  # the paper's, by default


def test_dcgan_32_counts_layer_by_layer():
    g = [("convT 100->256 4x4", _conv(100, 256, 4, False)), ("BN", _bn(256)),
         ("convT 256->128", _conv(256, 128, 4, False)), ("BN", _bn(128)),
         ("convT 128->64", _conv(128, 64, 4, False)), ("BN", _bn(64)),
         ("convT 64->3", _conv(64, 3, 4, False))]
    d = [("conv 3->64 4x4", _conv(3, 64, 4, False)),
         ("conv 64->128", _conv(64, 128, 4, False)), ("BN", _bn(128)),
         ("conv 128->256", _conv(128, 256, 4, False)), ("BN", _bn(256)),
         ("conv 256->1 4x4 (dense on 4x4x256)", _dense(256 * 16, 1, False))]
    assert _nets("dcgan", "dcgan", 32) == (_count(g), _count(d))


def _sngan_cnn_counts(side):
    """Miyato et al. 2018, Table 3 (M_g = side / 8), widths 512..64; biases on every layer."""
    m = side // 8
    g = [("dense 128 -> M x M x 512", _dense(128, m * m * 512)), ("BN", _bn(512)),
         ("deconv 4x4 256", _conv(512, 256, 4)), ("BN", _bn(256)),
         ("deconv 4x4 128", _conv(256, 128, 4)), ("BN", _bn(128)),
         ("deconv 4x4 64", _conv(128, 64, 4)), ("BN", _bn(64)),
         ("conv 3x3 3", _conv(64, 3, 3))]
    d = [("conv 3x3 64", _conv(3, 64, 3)), ("conv 4x4 64", _conv(64, 64, 4)),
         ("conv 3x3 128", _conv(64, 128, 3)), ("conv 4x4 128", _conv(128, 128, 4)),
         ("conv 3x3 256", _conv(128, 256, 3)), ("conv 4x4 256", _conv(256, 256, 4)),
         ("conv 3x3 512", _conv(256, 512, 3)), ("dense -> 1", _dense(m * m * 512, 1))]
    return _count(g), _count(d)


@pytest.mark.parametrize("side", [32, 64])
def test_sngan_standard_cnn_counts_layer_by_layer(side):
    assert _nets("sngan", "sngan-cnn", side) == _sngan_cnn_counts(side)
    assert _sngan_cnn_counts(32)[1] == 2_935_873  # the table's D at 32x32, summed by hand


def _gblock(cin, cout):
    return _bn(cin) + _conv(cin, cout, 3) + _bn(cout) + _conv(cout, cout, 3) + _conv(cin, cout, 1)


def _dblock(cin, cout, shortcut):
    return _conv(cin, cin, 3) + _conv(cin, cout, 3) + (_conv(cin, cout, 1) if shortcut else 0)


def _dblock_first(cin, cout):
    return _conv(cin, cout, 3) + _conv(cout, cout, 3) + _conv(cin, cout, 1)


def test_resnet_32_counts_layer_by_layer():
    """Miyato et al. 2018, Table 4 (CIFAR-10): G 256 channels, D 128."""
    g = [("dense 128 -> 4x4x256", _dense(128, 16 * 256))]
    g += [(f"ResBlock up 256 #{i}", _gblock(256, 256)) for i in range(3)]
    g += [("BN", _bn(256)), ("conv 3x3 3", _conv(256, 3, 3))]
    d = [("ResBlock down 128 (first)", _dblock_first(3, 128)),
         ("ResBlock down 128", _dblock(128, 128, True)),
         ("ResBlock 128", _dblock(128, 128, False)), ("ResBlock 128", _dblock(128, 128, False)),
         ("dense -> 1", _dense(128, 1))]
    assert _nets("wgan-gp", "resnet", 32) == (_count(g), _count(d))


def test_resnet_64_counts_layer_by_layer():
    """The SN-GAN 64x64 ResNet: G 1024 -> 64 over four up-blocks, D 64 -> 1024 over five."""
    widths = [1024, 512, 256, 128, 64]
    g = [("dense 128 -> 4x4x1024", _dense(128, 16 * 1024))]
    g += [(f"ResBlock up {b}", _gblock(a, b)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    g += [("BN", _bn(64)), ("conv 3x3 3", _conv(64, 3, 3))]
    d_widths = widths[::-1]
    d = [("ResBlock down 64 (first)", _dblock_first(3, 64))]
    d += [(f"ResBlock down {b}", _dblock(a, b, True))
          for a, b in zip(d_widths[:-1], d_widths[1:], strict=True)]
    d += [("dense -> 1", _dense(1024, 1))]
    assert _nets("wgan-gp", "resnet", 64) == (_count(g), _count(d))


def _began_counts(side, n=64, h=64, channels=3):
    """Berthelot et al. 2017, Figure 1: L = log2(side) - 2 stages of n, 2n, ... filters."""
    stages = {32: 3, 64: 4}[side]
    decoder = [("dense h -> 8x8xn", _dense(h, 64 * n))]
    decoder += [(f"stage {i}: 2x conv 3x3 n", 2 * _conv(n, n, 3)) for i in range(stages)]
    decoder += [("conv 3x3 -> image", _conv(n, channels, 3))]
    encoder = [("conv 3x3 n", _conv(channels, n, 3))]
    width = n
    for i in range(1, stages + 1):
        encoder += [(f"stage {i}: conv 3x3 {i}n", _conv(width, i * n, 3)),
                    (f"stage {i}: conv 3x3 {i}n", _conv(i * n, i * n, 3))]
        width = i * n
        if i < stages:
            encoder += [(f"stage {i}: stride-2 conv {i}n", _conv(width, width, 3))]
    encoder += [("dense 8x8xLn -> h", _dense(64 * width, h))]
    return _count(decoder), _count(encoder) + _count(decoder)


@pytest.mark.parametrize("side", [32, 64])
def test_began_autoencoder_counts_layer_by_layer(side):
    assert _nets("began", "began", side) == _began_counts(side)


@pytest.mark.parametrize("side", [28, 32, 64])
def test_mlp_counts_layer_by_layer(side):
    pixels = 3 * side * side
    g = [("dense 64 -> 256", _dense(64, 256)), ("BN", _bn(256)),
         ("dense 256 -> 512", _dense(256, 512)), ("BN", _bn(512)),
         ("dense 512 -> pixels", _dense(512, pixels))]
    d = [("dense pixels -> 512", _dense(pixels, 512)), ("dense 512 -> 256", _dense(512, 256)),
         ("dense 256 -> 1", _dense(256, 1))]
    assert _nets("gan", "mlp", side) == (_count(g), _count(d))


def test_widths_scale_every_architecture():
    for a in SCALED:
        for side in a.resolutions:
            model = "began" if a is Arch.BEGAN else "dcgan"
            wide, narrow = _nets(model, a.value, side), _nets(model, a.value, side, ngf=8, ndf=8)
            assert narrow[0] < wide[0] and narrow[1] < wide[1], (a, side)


# -- the seed's nets, bit for bit -----------------------------------------------------------
# sha256 over (key, shape, dtype, bytes) of every state_dict entry, in key order, of each
# variant's tuned recipe built after torch.manual_seed(0): computed with the code before the
# architecture registry existed (commit 3690844), so seeded 28x28 runs reproduce exactly.
SEED_INIT_SHA256 = {
    "began": "a7e8cab5491d41fe9fc2a3da8e40c2c0196a0bb4601af23b6764bed888f735eb",
    "cgan": "1f2434f3ce8ec2c66239e178f4be16e8233a8ebfbf8d8be39890c91ed5d5df85",
    "dcgan": "5640b97c0e991a5e3b1e42506d6f22cefc312549282c57b90b0d4ce4682bb117",
    "gan": "ef61d78c8bee9f07356c5f600cc367970925cdd8cecfb1ad1b21cc8e2ebd34db",
    "infogan": "cddef0508f0338bab915c84d6bfefa0dc86aed5e3955673f20984cde77a08713",
    "lsgan": "9543871ddb0d2217b7a4f7a14aba421ee61bf92cf2dc52a6c93b129a300c5299",
    "sngan": "7494524d64b90e563d4e1eeba55ec7521322f2d81aacbbe46dbe571e0a90adfa",
    "wgan": "9543871ddb0d2217b7a4f7a14aba421ee61bf92cf2dc52a6c93b129a300c5299",
    "wgan-gp": "d8c2293c978ff08b6afe95b8cc8a4b806d2de1c6fe04f56942ce9fb3f29e8935",
}


def state_digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().contiguous().cpu()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# the seed's InfoGAN: Q's heads on D's trunk (the tuned recipe gives Q its own encoder)
SEED_LAYOUT = {"infogan": dict(info_q="shared", info_q_real_only=False, info_mode_seeking=0.0)}


@pytest.mark.parametrize("name", sorted(SEED_INIT_SHA256))
def test_seed_nets_initialise_bit_for_bit_as_before(name):
    torch.manual_seed(0)
    v = build_variant(recipe_config(name, **SEED_LAYOUT.get(name, {})))
    assert v.cfg.arch == "tiny"
    assert state_digest(v.state_dict()) == SEED_INIT_SHA256[name]


# -- auto, and the pairs that make no sense ------------------------------------------------
def test_auto_picks_the_seed_nets_at_28_and_each_papers_nets_above():
    expected = {"gan": "mlp", "cgan": "mlp", "dcgan": "dcgan", "lsgan": "dcgan",
                "wgan": "dcgan", "infogan": "dcgan", "sngan": "sngan-cnn",
                "wgan-gp": "resnet", "began": "began"}
    assert set(expected) == set(VARIANTS)
    for name, arch in expected.items():
        assert resolve_arch(name, 28) is Arch.TINY
        assert resolve_arch(name, 32) is resolve_arch(name, 64) is Arch(arch)


def test_resolved_config_is_concrete_and_idempotent():
    cfg = recipe_config("sngan", resolution=32, channels=3)
    assert (cfg.arch, cfg.ngf, cfg.ndf, cfg.latent_dim) == ("auto", 0, 0, 0)
    v = build_variant(cfg)
    assert (v.cfg.arch, v.cfg.ngf, v.cfg.ndf, v.cfg.latent_dim) == ("sngan-cnn", 64, 64, 128)
    assert VARIANTS["sngan"].resolved(v.cfg) == v.cfg
    legacy = build_variant(recipe_config("cgan")).cfg  # a config that left the shape 0
    assert (legacy.channels, legacy.resolution, legacy.num_classes) == (1, 28, 10)
    assert (legacy.arch, legacy.ngf, legacy.latent_dim) == ("tiny", 16, 64)
    kept = build_variant(recipe_config("dcgan", resolution=64, channels=1, latent_dim=7,
                                       ngf=5)).cfg
    assert (kept.latent_dim, kept.ngf, kept.ndf) == (7, 5, 64)


NONSENSE = [
    ("dcgan", "began", 32, "--arch began is BEGAN's autoencoder D: only --model began"),
    ("began", "dcgan", 64, "--model began needs an autoencoder D and --arch dcgan has none"),
    ("began", "resnet", 32, "--model began needs an autoencoder D"),
    ("dcgan", "dcgan", 28, "--arch dcgan has no 28x28 form"),
    ("wgan-gp", "resnet", 28, "--arch resnet has no 28x28 form"),
    ("sngan", "tiny", 64, "--arch tiny has no 64x64 form"),
    ("began", "tiny", 32, "--arch tiny has no 32x32 form"),
]


@pytest.mark.parametrize("model,arch,side,message", NONSENSE)
def test_pairs_that_make_no_sense_are_one_line_errors(model, arch, side, message):
    with pytest.raises(UserError, match=message) as err:
        build_variant(recipe_config(model, arch=arch, resolution=side, channels=1))
    assert "\n" not in str(err.value)


def test_cli_refuses_a_nonsense_pair_with_exit_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    code = run_cli(train_main, ["--model", "began", "--arch", "sngan-cnn", "--resolution", "64",
                                "--channels", "3", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "needs an autoencoder D" in err, err
    assert not out.exists()
    code = run_cli(train_main, ["--arch", "stylegan", "--out", str(out)])
    assert code == 2 and "--arch" in capsys.readouterr().err


def test_cgan_on_data_without_classes_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(base, "MNIST_LIKE", ())  # as the data step leaves an unlabelled folder
    cfg = recipe_config("cgan", resolution=32, channels=3, num_classes=0)
    with pytest.raises(UserError, match="--model cgan is conditioned on class labels") as err:
        build_variant(cfg)
    assert "\n" not in str(err.value)
    assert build_variant(recipe_config("gan", resolution=32, channels=3)).cfg.num_classes == 0


# -- shapes and conditioning -------------------------------------------------------------
@pytest.mark.parametrize("arch", SCALED, ids=str)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_architecture_maps_latent_to_image_and_image_to_logit(arch, channels):
    torch.manual_seed(0)
    for side in arch.resolutions:
        shape = NetShape(arch, channels, side, 4, 4)
        if arch is Arch.BEGAN:
            v = build_variant(recipe_config("began", arch="began", resolution=side,
                                            channels=channels, ngf=4, ndf=4))
            x = torch.rand(3, channels, side, side) * 2 - 1
            torch.testing.assert_close(v.D(x), (v.D.reconstruct(x) - x).abs().mean((1, 2, 3)))
            assert v.D.features(x).shape == (3, v.latent.z_dim)
            G = v.G
            z = v.latent.sample(3, "cpu")["z"]
        else:
            G = build_generator(shape, 10, OutputRange.UNIT)
            D = build_discriminator(shape, None, True)
            z = torch.randn(3, 10)
            x = torch.rand(3, channels, side, side)
            assert D(x).shape == (3,)
            assert D.features(x).ndim == 2 and D.features(x).shape[0] == 3
        img = G(z=z)
        assert img.shape == (3, channels, side, side), (arch, side)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "sngan-cnn", "resnet"])
def test_cgan_embeds_the_label_into_g_and_projects_it_in_d(arch):
    torch.manual_seed(0)
    v = build_variant(recipe_config("cgan", arch=arch, resolution=32, channels=3, ngf=4,
                                    ndf=4, num_classes=7)).eval()
    assert v.latent.num_classes == 7 and v.D.proj.weight.shape[0] == 7
    z = torch.randn(7, v.latent.z_dim)
    labels = torch.arange(7)
    a, b = v.G(z=z, label=labels), v.G(z=z, label=(labels + 1) % 7)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # every image changes
    x = torch.rand(7, 3, 32, 32)
    assert not torch.allclose(v.D(x, labels), v.D(x, (labels + 1) % 7))


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "sngan-cnn", "resnet"])
def test_infogan_q_heads_on_the_features_with_the_asked_number_of_codes(arch):
    torch.manual_seed(0)
    shape = dict(arch=arch, resolution=64, channels=3, ngf=4, ndf=4, info_categories=6,
                 info_cont_loss="nll")
    v = build_variant(recipe_config("infogan", **shape, **SEED_LAYOUT["infogan"])).eval()
    assert (v.latent.cat_dim, v.latent.cont_dim) == (6, 2)
    x = torch.rand(5, 3, 64, 64)
    q = v.D.heads(x)
    assert q.logit.shape == (5,) and q.cat_logits.shape == (5, 6)
    assert q.cont_mu.shape == q.cont_logvar.shape == (5, 2)
    torch.testing.assert_close(q.logit, v.D(x))
    assert v.G(**v.latent.sample(5, "cpu")).shape == (5, 3, 64, 64)
    # Q as its own copy of the architecture's D (no SN), D without Q heads
    enc = build_variant(recipe_config("infogan", **shape, info_q="encoder")).eval()
    q = enc.Q.heads(x)
    assert q.cat_logits.shape == (5, 6) and q.cont_mu.shape == q.cont_logvar.shape == (5, 2)
    assert not hasattr(enc.D, "q_cat") and enc.D(x).shape == (5,)
    assert not any("parametrizations" in n for n, _ in enc.Q.named_parameters())
    x.requires_grad_(True)
    fixed = enc.Q.heads(x, fixed_clusters=True)  # G following Q's clusters
    fixed.cat_logits.sum().backward(retain_graph=True)
    assert all(p.grad is None for p in enc.Q.parameters()) and x.grad.abs().sum() > 0
    (fixed.cont_mu.sum() + fixed.cont_logvar.sum()).backward()
    learned = {n.split(".")[0] for n, p in enc.Q.named_parameters() if p.grad is not None}
    assert learned == {"trunk", "q_mu", "q_logvar"}


# -- spectral norm, batch norm --------------------------------------------------------------
def _weight_layers(module):
    kinds = nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding
    return [m for m in module.modules() if isinstance(m, kinds)]


@pytest.mark.parametrize("model,arch", [("sngan", "mlp"), ("sngan", "dcgan"),
                                        ("sngan", "sngan-cnn"), ("sngan", "resnet"),
                                        ("cgan", "resnet"), ("infogan", "sngan-cnn"),
                                        ("began", "began")])
def test_spectral_norm_switch_reaches_every_d_weight(model, arch):
    for on in (True, False):
        v = build_variant(recipe_config(model, arch=arch, resolution=32, channels=3, ngf=4,
                                        ndf=4, spectral_norm=on))
        layers = _weight_layers(v.D)
        assert len(layers) >= 3
        for m in layers:
            assert parametrize.is_parametrized(m, "weight") == on, (model, arch, on, m)


def test_spectral_norm_goes_through_the_injected_ops():
    """The variant wraps D's layers with ``ops.spectral_norm``: with the Triton ops
    (interpreted on CPU) every D weight carries the fused kernel's parametrization."""
    ops = build_ops("triton", torch.device("cpu"), log=lambda *_: None)
    v = build_variant(recipe_config("sngan", arch="resnet", resolution=32, channels=3, ngf=2,
                                    ndf=2), ops)
    layers = _weight_layers(v.D)
    assert layers and all(isinstance(m.parametrizations.weight[0], SpectralNorm)
                          for m in layers)
    assert v.D(torch.rand(2, 3, 32, 32)).shape == (2,)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "sngan-cnn", "resnet"])
def test_wgan_gp_critic_has_no_batch_norm_and_d_batch_norm_adds_it(arch):
    def norms(model, **kw):
        v = build_variant(recipe_config(model, arch=arch, resolution=32, channels=1, ngf=4,
                                        ndf=4, **kw))
        return [m for m in v.D.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    assert norms("wgan-gp") == [] and norms("sngan") == []
    assert norms("dcgan")  # the DCGAN recipe keeps BN in D
    with pytest.raises(UserError, match="drop --d-batch-norm"):
        norms("wgan-gp", d_batch_norm=True)


def test_infogan_encoder_q_builds_for_every_image_shape():
    v = build_variant(recipe_config("infogan", info_q="encoder"))
    assert v.cfg.arch == "tiny" and v.Q is not None
    rgb = build_variant(recipe_config("infogan", info_q="encoder", channels=3))  # tiny, RGB
    assert rgb.Q.heads(torch.rand(2, 3, 28, 28)).cat_logits.shape == (2, 10)
    assert rgb.D(torch.rand(2, 3, 28, 28)).shape == (2,)
    big = build_variant(recipe_config("infogan", info_q="encoder", resolution=32, channels=3))
    assert big.cfg.arch == "dcgan" and big.Q.heads(torch.rand(2, 3, 32, 32)).cat_logits.shape \
        == (2, 10)
