"""InfoGAN: the seed's exact parameter counts, the info phase, and its two options."""

import pytest
import torch
import torch.nn.functional as F

from gan_accel.training.trainer import count_params
from gan_accel.variants import Batch, build_variant, recipe_config
from gan_accel.variants.infogan import thickness_quantile


def make(seed=0, **overrides):
    """The seed's InfoGAN (third info phase, no clustering term) unless overridden."""
    torch.manual_seed(seed)
    return build_variant(recipe_config("infogan", "paper", **overrides))


def batch(v, n=16, seed=1):
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 1, 28, 28, generator=gen) ** 3
    labels = torch.arange(n) % 10
    return Batch(real, labels, v.latent.sample(n, "cpu", gen))


def test_seed_parameter_counts_are_exact():
    v = make()
    assert count_params(v.G) == 184_896  # DCGAN G with a 22-channel input
    assert count_params(v.D) == 166_796  # "3-head, MSE"
    assert count_params(make(info_cont_loss="nll").D) == 170_894  # "4-head, Gaussian NLL"
    # the bias choices that give those counts: D head without, Q heads with
    assert v.D.head.bias is None
    assert v.D.q_cat.bias.shape == (10,) and v.D.q_mu.bias.shape == (2,)
    assert v.D.q_logvar is None


def test_latent_and_generator_inputs():
    v = make()
    spec = v.latent
    assert (spec.z_dim, spec.z_dist, spec.cat_dim, spec.cont_dim) == (10, "uniform", 10, 2)
    assert spec.input_names == ["z", "codes"]
    lat = batch(v).latent
    assert lat["codes"].shape == (16, 12)
    assert float(lat["z"].min()) >= -1 and float(lat["z"].max()) <= 1
    assert torch.equal(lat["codes"][:, :10].sum(1), torch.ones(16))  # one-hot categorical
    img = v.G(z=lat["z"], codes=lat["codes"])
    assert img.shape == (16, 1, 28, 28)


def test_reference_recipe_is_the_seed():
    cfg = recipe_config("infogan", "paper")
    assert (cfg.lr_d, cfg.lr_g, cfg.info_lr, cfg.batch_size) == (5e-4, 2e-4, 1e-4, 64)
    assert (cfg.info_cont_weight, cfg.real_label, cfg.spectral_norm) == (0.1, 0.9, True)


def test_info_phase_is_a_third_adam_over_g_and_d():
    v = make()
    phases = v.phases()
    assert [p.name for p in phases] == ["D", "G", "info"]
    info = phases[2]
    assert info.lr == 1e-4 and info.every == 1
    ids = {id(p) for p in info.params}
    assert ids == {id(p) for p in [*v.G.parameters(), *v.D.parameters()]}


def test_one_info_step_moves_g_and_the_shared_d_trunk_but_not_the_d_head():
    v = make()
    info = v.phases()[2]
    before = {k: p.detach().clone() for k, p in v.named_parameters()}
    opt = torch.optim.Adam(info.params, lr=info.lr, betas=(0.5, 0.99))
    loss, logs = info.loss(batch(v))
    opt.zero_grad()
    loss.backward()
    opt.step()
    changed = {k for k, p in v.named_parameters() if not torch.equal(p, before[k])}
    g_params = {k for k in before if k.startswith("G.")}
    trunk = {k for k in before if k.startswith("D.trunk.")}
    assert g_params <= changed, sorted(g_params - changed)
    assert trunk <= changed, sorted(trunk - changed)
    assert not any(k.startswith("D.head.") for k in changed)  # the info loss has no D term
    assert {"loss_info", "info_cat", "info_cont", "info_cat_acc"} <= set(logs)


def test_info_loss_is_ce_plus_weighted_mse():
    v = make().eval()
    b = batch(v)
    loss, logs = v.info_loss(b)
    q = v.D.heads(v.G(**b.latent))
    codes = b.latent["codes"]
    ce = F.cross_entropy(q.cat_logits, codes[:, :10].argmax(1))
    mse = F.mse_loss(q.cont_mu, codes[:, 10:])
    torch.testing.assert_close(loss, ce + 0.1 * mse)


def test_nll_variant_uses_gaussian_nll_of_the_continuous_codes():
    v = make(info_cont_loss="nll").eval()
    with torch.no_grad():  # make the variance head matter
        v.D.q_logvar.bias.fill_(0.5)
    b = batch(v)
    q = v.D.heads(v.G(**b.latent))
    assert q.cont_logvar.shape == (16, 2)
    cont = b.latent["codes"][:, 10:]
    expected = F.gaussian_nll_loss(q.cont_mu, cont, q.cont_logvar.exp())
    torch.testing.assert_close(v.cont_loss(q.cont_mu, q.cont_logvar, cont), expected)
    _, logs = v.info_loss(b)
    torch.testing.assert_close(logs["info_cont"], expected)


def test_supervised_code_adds_ce_on_real_labels():
    plain = make().eval()
    sup = make(supervised_code=True).eval()
    b = batch(plain)
    loss_plain, _ = plain.info_loss(b)
    loss_sup, logs = sup.info_loss(b)
    expected = F.cross_entropy(sup.D.heads(b.real).cat_logits, b.labels)
    torch.testing.assert_close(loss_sup - loss_plain, expected)
    torch.testing.assert_close(logs["info_sup"], expected)


def test_thickness_quantile_ranks_ink_within_each_class():
    images = torch.zeros(5, 1, 28, 28)
    ink = torch.tensor([0.3, 0.1, 0.2, 0.9, 0.5])
    images += ink.view(5, 1, 1, 1)
    labels = torch.tensor([1, 1, 1, 7, 4])
    q = thickness_quantile(images, labels)
    # class 1: inks 0.3, 0.1, 0.2 -> ranks 2, 0, 1 of 3 -> (2r + 1)/3 - 1; classes 7, 4 alone
    torch.testing.assert_close(q, torch.tensor([2 / 3, -2 / 3, 0.0, 0.0, 0.0]))


def test_thickness_guidance_teaches_q_cont0_the_real_thickness():
    plain = make().eval()
    guided = make(thickness_guidance=True).eval()
    b = batch(plain)
    loss_plain, _ = plain.info_loss(b)
    loss_guided, logs = guided.info_loss(b)
    target = thickness_quantile(b.real, b.labels)
    expected = F.mse_loss(guided.D.heads(b.real).cont_mu[:, 0], target)
    torch.testing.assert_close(logs["info_thick"], expected)
    torch.testing.assert_close(loss_guided - loss_plain, 0.1 * expected)



def _grads(module):
    return {n: p.grad for n, p in module.named_parameters()}


def test_joint_phase_puts_the_information_term_into_the_d_and_g_losses():
    """The InfoGAN paper: no third optimizer; Q (with D's trunk) learns in the D phase, G
    gets the information term in its own phase."""
    v = make(info_phase="joint")
    assert [ph.name for ph in v.phases()] == ["D", "G"]
    b = batch(v)
    d_loss, logs = v.joint_d_loss(b)
    d_loss.backward()
    assert v.D.q_cat.bias.grad.abs().sum() > 0  # Q learns with D
    assert all(g is None for g in _grads(v.G).values())  # fakes are fixed in the D phase
    assert "info_cat" in logs and "loss_d" in logs
    v.zero_grad(set_to_none=True)
    base = make(info_phase="joint", info_cat_weight=0.0, info_cont_weight=0.0)
    base.load_state_dict(v.state_dict())
    g_loss, _ = v.joint_g_loss(b)
    g_plain, _ = base.joint_g_loss(b)
    assert float(g_loss) > float(g_plain)  # the information term is in G's loss
    g_loss.backward()
    assert all(g is not None for g in _grads(v.G).values())


def test_categorical_weight_scales_the_categorical_term():
    v1, v3 = make(), make(info_cat_weight=3.0)
    v3.load_state_dict(v1.state_dict())
    b = batch(v1)
    q = v1.D.heads(v1.generate(b.latent))
    l1, logs1 = v1.info_terms(q, b)
    l3, _ = v3.info_terms(q, b)
    cont = float(l1) - float(logs1["info_cat"])
    torch.testing.assert_close(float(l3), 3 * float(logs1["info_cat"]) + cont)


def test_fc_q_head_is_the_papers_layer_before_the_heads():
    v = make(info_head="fc")
    assert isinstance(v.D.q_body[1], torch.nn.Linear) and v.D.q_body[1].out_features == 128
    assert isinstance(v.D.q_body[2], torch.nn.BatchNorm1d)
    q = v.D.heads(batch(v).real)
    assert q.cat_logits.shape == (16, 10) and q.cont_mu.shape == (16, 2)
    assert count_params(make().D) == 166_796  # the default stays the seed's head


def test_clustering_loss_prefers_confident_evenly_used_codes_that_survive_a_move():
    from gan_accel.variants.infogan import clustering_loss

    eye = torch.eye(10).repeat(2, 1) * 20  # [20, 10]: confident, every code used twice
    confident_even, _ = clustering_loss(eye, eye)
    uniform, _ = clustering_loss(torch.zeros(20, 10), torch.zeros(20, 10))
    collapsed, _ = clustering_loss(eye[0].repeat(20, 1), eye[0].repeat(20, 1))  # one code
    moved_away, _ = clustering_loss(eye, eye.roll(1, dims=1))
    assert float(confident_even) < float(uniform) and float(confident_even) < float(collapsed)
    assert float(moved_away) > float(confident_even) + 10  # the code changed under the move
    torch.testing.assert_close(confident_even, torch.tensor(-torch.log(torch.tensor(10.0))),
                               atol=1e-3, rtol=0)


def test_cluster_term_trains_q_on_real_images():
    v = make(info_cluster_weight=1.0)
    b = batch(v)
    b = b._replace(aug=v.draw_augmentation(16, "cpu", torch.Generator().manual_seed(3)))
    loss, logs = v.info_loss(b)
    assert {"cluster_entropy", "cluster_balance", "cluster_consistency"} <= set(logs)
    plain, _ = make().info_loss(b._replace(aug=None))
    loss.backward()
    assert v.D.q_cat.bias.grad.abs().sum() > 0
    assert float(loss) != float(plain)


# -- the separate Q encoder, the clustering weights, the mode-seeking term ------------------
def test_code_encoder_is_built_after_the_seed_nets_so_their_initial_weights_stay():
    seed, enc = make(), make(info_q="encoder")
    assert count_params(enc.Q) == 164_748  # the DCGAN trunk without SN + the seed's Q heads
    assert count_params(enc.D) == 142_208  # D is the DCGAN critic: no Q heads on it
    assert count_params(make(info_q="encoder", info_cont_loss="nll").Q) == 168_846
    for k, t in seed.G.state_dict().items():
        assert torch.equal(enc.G.state_dict()[k], t), k
    d_enc = enc.D.state_dict()
    for k, t in seed.D.state_dict().items():
        if k.startswith(("trunk.", "head.")):
            assert torch.equal(d_enc[k], t), k
    assert seed.Q is None and not any(k.startswith("D.q_") for k in d_enc)


def test_encoder_q_trains_with_g_and_its_terms_never_reach_d():
    v = make(info_q="encoder", info_phase="joint", info_cluster_weight=1.0)
    d_phase, g_phase = v.phases()
    assert {id(p) for p in d_phase.params} == {id(p) for p in v.D.parameters()}
    assert {id(p) for p in g_phase.params} == {id(p) for p in [*v.G.parameters(),
                                                                *v.Q.parameters()]}
    b = batch(v)
    b = b._replace(aug=v.draw_augmentation(16, "cpu", torch.Generator().manual_seed(3)))
    d_loss, _ = d_phase.loss(b)
    d_loss.backward()
    assert all(p.grad is None for p in v.Q.parameters())  # the D phase is D's alone
    v.zero_grad(set_to_none=True)
    g_loss, logs = g_phase.loss(b)
    g_loss.backward()
    assert all(p.grad is not None for p in [*v.G.parameters(), *v.Q.parameters()])
    assert {"info_g", "cluster_entropy", "cluster_consistency", "info_cat_acc"} <= set(logs)
    # without the real-image terms the G loss is the adversarial loss + the information term
    plain = make(info_q="encoder", info_phase="joint").eval()
    plain.load_state_dict(v.state_dict())
    q = plain.Q.heads(plain.G(**b.latent))
    info, _ = plain.info_terms(q, b)
    adv = plain.adversarial_g(plain.D(plain.G(**b.latent)))
    torch.testing.assert_close(plain.joint_g_loss(b)[0], adv + info)


def test_real_only_q_learns_its_clusters_from_real_images_and_g_follows_them():
    kw = dict(info_q="encoder", info_phase="joint", info_cluster_weight=1.0)
    v = make(info_q_real_only=True, **kw)
    b = batch(v)
    b = b._replace(aug=v.draw_augmentation(16, "cpu", torch.Generator().manual_seed(3)))
    running = {n: t.clone() for n, t in v.Q.named_buffers()}
    q = v.Q.heads(v.G(**b.latent), fixed_clusters=True)
    assert all(torch.equal(t, running[n]) for n, t in v.Q.named_buffers())  # fakes: no stats
    # the categorical code on fakes moves G and nothing of Q
    F.cross_entropy(q.cat_logits, b.latent["codes"][:, :10]).backward(retain_graph=True)
    assert all(p.grad is None for p in v.Q.parameters())
    assert all(p.grad is not None for p in v.G.parameters())
    # the continuous codes on fakes teach Q's trunk and continuous heads, not its clusters
    q.cont_mu.square().sum().backward()
    assert v.Q.q_cat.weight.grad is None and v.Q.q_mu.weight.grad.abs().sum() > 0
    assert v.Q.trunk[0].weight.grad.abs().sum() > 0
    # in the G phase Q's categorical head learns what the real-image terms alone teach it
    v.zero_grad(set_to_none=True)
    g_loss, _ = v.joint_g_loss(b)
    g_loss.backward()
    with_fakes = [p.grad.clone() for p in v.Q.q_cat.parameters()]
    v.zero_grad(set_to_none=True)
    real_only, _ = v.real_code_terms(torch.zeros(()), {}, b)
    real_only.backward()
    for got, want in zip(with_fakes, [p.grad for p in v.Q.q_cat.parameters()], strict=True):
        torch.testing.assert_close(got, want)


def test_real_only_q_needs_the_encoder_joint_phase_and_clustering_term():
    from gan_accel.errors import UserError

    for missing in ("info_q", "info_phase", "info_cluster_weight"):
        kw = dict(info_q="encoder", info_phase="joint", info_cluster_weight=1.0)
        kw.pop(missing)
        with pytest.raises(UserError, match="--info-q-real-only needs"):
            make(info_q_real_only=True, **kw)


def test_predict_code_reads_the_encoder_in_eval_mode_and_leaves_its_mode():
    from gan_accel.evaluation import predict_code

    v = make(info_q="encoder")
    x = batch(v).real
    v.Q.train()
    logits = predict_code(v, x)
    assert v.Q.training  # restored
    v.Q.eval()
    torch.testing.assert_close(logits, v.Q.heads(x).cat_logits)
    shared = make().eval()
    torch.testing.assert_close(predict_code(shared, x), shared.D.heads(x).cat_logits)


def test_clustering_weights_scale_the_confidence_and_balance_terms():
    from gan_accel.variants.infogan import clustering_loss

    gen = torch.Generator().manual_seed(0)
    logits, moved = torch.randn(32, 10, generator=gen), torch.randn(32, 10, generator=gen)
    base, logs = clustering_loss(logits, moved)
    weighted, _ = clustering_loss(logits, moved, confidence=0.1, balance_weight=0.4)
    h, bal, cons = logs["cluster_entropy"], logs["cluster_balance"], logs[
        "cluster_consistency"]
    torch.testing.assert_close(base, h - bal + cons)
    torch.testing.assert_close(weighted, 0.1 * h - 0.4 * bal + cons)


def test_mode_seeking_pairs_share_codes_and_a_generator_ignoring_z_pays():
    from gan_accel.variants.infogan import mode_seeking_loss, paired_codes

    v = make()
    lat = v.latent.sample(9, "cpu", torch.Generator().manual_seed(0))
    paired = paired_codes(lat)
    assert torch.equal(paired["codes"][:4], paired["codes"][4:8])
    assert torch.equal(paired["codes"][8], lat["codes"][8]) and paired["z"] is lat["z"]
    z = paired["z"]
    same = torch.zeros(9, 1, 28, 28)  # one image whatever z
    used = z.mean(1).view(9, 1, 1, 1).expand(9, 1, 28, 28)  # every pixel moves with z
    loss_same, ratio_same = mode_seeking_loss(same, z)
    loss_used, ratio_used = mode_seeking_loss(used, z)
    assert float(ratio_same) == 0 and float(loss_same) > 1e4
    assert float(ratio_used) > 0 and float(loss_used) < 1e3


def test_mode_seeking_is_a_term_of_the_joint_g_loss():
    from gan_accel.errors import UserError

    with pytest.raises(UserError, match="--info-mode-seeking"):
        make(info_mode_seeking=1.0).phases()
    v = make(info_phase="joint", info_mode_seeking=2.0).eval()
    off = make(info_phase="joint").eval()
    off.load_state_dict(v.state_dict())
    b = batch(v)
    loss, logs = v.joint_g_loss(b)
    assert "z_effect" in logs
    from gan_accel.variants.infogan import mode_seeking_loss, paired_codes

    pb = b._replace(latent=paired_codes(b.latent))
    base, _ = off.joint_g_loss(pb)  # the same fakes without the term
    ms, _ = mode_seeking_loss(v.G(**pb.latent), pb.latent["z"])
    torch.testing.assert_close(loss, base + 2.0 * ms)


def test_stroke_width_dilates_or_erodes_by_the_amount():
    from gan_accel.variants.augment import stroke_width

    dot = torch.zeros(1, 1, 7, 7)
    dot[0, 0, 3, 3] = 1.0
    block = torch.zeros(1, 1, 7, 7)
    block[0, 0, 2:5, 2:5] = 1.0
    torch.testing.assert_close(stroke_width(dot, torch.tensor([1.0])), block)  # thicker
    torch.testing.assert_close(stroke_width(block, torch.tensor([-1.0])), dot)  # thinner
    torch.testing.assert_close(stroke_width(block, torch.tensor([0.0])), block)
    torch.testing.assert_close(stroke_width(dot, torch.tensor([0.5])), 0.5 * (dot + block))


def test_cluster_stroke_moves_the_strokes_of_the_clustering_copy():
    from gan_accel.variants.augment import PARAMS

    v = make(info_cluster_weight=1.0, info_cluster_stroke=1.0).eval()
    off = make(info_cluster_weight=1.0).eval()
    gen = torch.Generator().manual_seed(3)
    u = v.draw_augmentation(16, "cpu", gen)
    assert u.shape[-1] == PARAMS + 2
    assert off.draw_augmentation(16, "cpu", gen).shape[-1] == PARAMS
    b = batch(v)._replace(aug=u)
    logits = v.D.heads(b.real).cat_logits
    _, with_stroke = v.cluster_terms(logits, b)
    _, without = off.cluster_terms(logits, b._replace(aug=u[..., :PARAMS]))
    assert float(with_stroke["cluster_consistency"]) != float(without["cluster_consistency"])
    u[..., PARAMS] = 0.5  # amount 0: the copy is the affine one alone
    _, neutral = v.cluster_terms(logits, b._replace(aug=u))
    torch.testing.assert_close(neutral["cluster_consistency"], without["cluster_consistency"])


def test_shear_slants_about_the_centre_and_fills_the_background():
    from gan_accel.variants.augment import shear

    bar = -torch.ones(1, 1, 9, 9)  # a vertical bar on the [-1, 1] range's background
    bar[0, 0, :, 4] = 1.0
    torch.testing.assert_close(shear(bar, torch.tensor([0.0]), -1.0), bar)
    slanted = shear(bar, torch.tensor([2 / 9 * 4]), -1.0)[0, 0]  # 4 px over the height
    assert float(slanted[4, 4]) == pytest.approx(1.0)  # the centre stays
    top, bottom = slanted[0].argmax(), slanted[8].argmax()
    assert int(top) != 4 and int(bottom) != 4 and int(top) + int(bottom) == 8  # opposite ways
    assert float(slanted.min()) >= -1.0 - 1e-6  # nothing darker than the background came in
