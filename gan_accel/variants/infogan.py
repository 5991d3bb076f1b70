"""InfoGAN (Chen et al. 2016), the seed README's tiny MNIST model.

Latent: z ~ U(-1, 1)^10 ++ one-hot Cat(10) ++ continuous U(-1, 1)^2 (22 channels into the
DCGAN generator). D carries Q heads on its shared trunk. Three phases per step: D and G with
the usual BCE losses, then "info": its own Adam over G + D minimising the mutual-information
surrogate on fresh fakes, CE(Q_cat(G(z, c)), c_cat) + w * MSE-or-NLL(Q_cont(G(z, c)), c_cont).

Options:

* ``supervised_code``: add CE(Q_cat(x_real), y_real), so categorical code k is digit k.
* ``thickness_guidance``: tie cc[0] to stroke thickness. Q_cont[0] is taught, on real
  images, to read thickness: its target is the image's ink (mean pixel value) as a quantile
  within its digit class in the batch, mapped to (-1, 1) like cc[0] ~ U(-1, 1). The info loss
  already makes Q_cont[0](G(z, c)) recover cc[0], so G must draw cc[0] as that thickness
  quantile: low cc[0] thin strokes, high cc[0] thick ones. cc[1] stays unsupervised.
* ``info_q="encoder"``: Q as its own network (:class:`CodeEncoder`), trained with G (G's
  phase and optimizer), D the plain DCGAN critic, so Q's terms never move D.
* ``info_cluster_confidence`` / ``info_cluster_balance``: the clustering term's entropy
  weights; ``info_cluster_stroke`` / ``info_cluster_shear``: its moved copy's stroke width
  and slant also change.
* ``info_q_real_only``: Q's clustering learns from real images alone; the categorical
  information term on fakes moves G only (the continuous codes' also teach Q's trunk and
  continuous heads), so G follows Q's codes and cannot pull Q's clusters towards the digits
  it happens to draw for one code.
* ``info_mode_seeking``: pairs of one code and different z must differ (joint phase only).

Measured settings and run history: docs/recipes.md.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..augment_policy import Transform
from ..errors import UserError
from ..latent import LatentSpec
from ..models.arch import Arch
from ..models.builders import build_info_discriminator
from ..models.dcgan import DCGANDiscriminator
from ..models.infogan import CodeEncoder, InfoGANDiscriminator, InfoGANGenerator, InfoHeads
from ..ops import TORCH_OPS, Ops
from .augment import PARAMS, VIEWS, Augment, shear, stroke_width
from .base import Batch, Logs, Phase, Variant

if TYPE_CHECKING:
    from ..config import TrainConfig

# the transforms a real digit's code must survive in the clustering term, and the draw used
CLUSTER_TRANSFORMS = (Transform.TRANSLATION, Transform.AFFINE)
CLUSTER_VIEW = 2
# the clustering copy's own draws, appended to the view's columns: stroke width, shear
STROKE_COLUMN, SHEAR_COLUMN = PARAMS, PARAMS + 1


def thickness_quantile(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, the rank of its ink among same-class images in the batch, in (-1, 1). [B]"""
    ink = images.flatten(1).mean(1)  # [B]
    same = labels[:, None] == labels[None, :]  # [B, B]
    below = ((ink[None, :] < ink[:, None]) & same).sum(1).to(ink.dtype)
    count = same.sum(1).to(ink.dtype)
    return (2 * below + 1) / count - 1


def clustering_loss(logits: torch.Tensor, moved_logits: torch.Tensor, confidence: float = 1.0,
                    balance_weight: float = 1.0) -> tuple[torch.Tensor, Logs]:
    """Q as a clustering of real images (the IMSAT objective), from its code logits [B, cat]
    and its logits on transformed copies of the same images.

    Minimises each image's code entropy (confident codes, weight ``confidence``), maximises
    the entropy of the batch-average code (every code used, weight ``balance_weight``), and
    keeps each image's code when it is moved: ``KL(p || q)`` with the untransformed
    prediction ``p`` as the target.
    """
    p = F.softmax(logits, dim=1)
    logp = F.log_softmax(logits, dim=1)
    per_image = -(p * logp).sum(1).mean()
    marginal = p.mean(0)
    balance = -(marginal * torch.log(marginal.clamp_min(1e-12))).sum()
    logq = F.log_softmax(moved_logits, dim=1)
    consistency = (p.detach() * (logp.detach() - logq)).sum(1).mean()
    loss = confidence * per_image - balance_weight * balance + consistency
    return loss, {"cluster_entropy": per_image.detach(), "cluster_balance": balance.detach(),
                  "cluster_consistency": consistency.detach()}


def paired_codes(latent: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The latent with its second half's codes replaced by its first half's: row ``i`` and
    row ``i + B // 2`` share every code and differ only in z (an odd last row keeps its own).
    """
    codes = latent["codes"]
    h = codes.shape[0] // 2
    paired = torch.cat([codes[:h], codes[:h], codes[2 * h:]])
    return {**latent, "codes": paired}


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mode-seeking term (Mao et al. 2019) on :func:`paired_codes` fakes: ``1 / (r + eps)``
    with ``r = mean |G(z1, c) - G(z2, c)| / mean |z1 - z2|``, so a G that ignores z pays for
    it. Returns (loss, r)."""
    h = fake.shape[0] // 2
    ratio = (fake[:h] - fake[h:2 * h]).abs().mean() / (z[:h] - z[h:2 * h]).abs().mean()
    return 1.0 / (ratio + 1e-5), ratio


class InfoGAN(Variant):
    name = "infogan"
    summary = "DCGAN G on z ++ codes, D with Q heads; BCE + info loss (CE, MSE or Gaussian NLL)"
    # The seed: Adam 5e-4 for D, 2e-4 for G, 1e-4 for the info (Q-G) phase, betas
    # (0.5, 0.99), batch 64, real label 0.9, ReduceLROnPlateau(0.8, 5), z ~ U(-1, 1)^10,
    # SN + BN in D, continuous-code weight 0.1 (3-head MSE; --info-cont-loss nll: 4 heads).
    paper_recipe = dict(lr_d=5e-4, lr_g=2e-4, info_lr=1e-4, beta1=0.5, beta2=0.99, batch_size=64,
                        real_label=0.9, plateau_factor=0.8, plateau_patience=5,
                        latent_dist="uniform", spectral_norm=True, d_batch_norm=True,
                        info_cont_loss="mse", info_cont_weight=0.1)
    # Departures, measured on the embedded subset (code accuracy: Q on held-out real digits,
    # Hungarian-matched; 40 epochs): the seed's recipe reaches 48.8% at 30 epochs. The
    # InfoGAN paper's rates (G 1e-3, D 2e-4) give 69.7%, in a third phase or joint alike
    # (joint: the information term added to the D and G phases, as the paper trains Q
    # and G); a categorical weight of 2 gave 58.7%, all rates 1e-3 59-67%. The codes share
    # digits in part because Q is taught only on fakes: a clustering term on real images
    # (--info-cluster-weight 1: confident, balanced, shift- and affine-stable codes) lifts it
    # to 76.1% with FID 12.1 (joint) and 77.7% with FID 25.3 (third phase); weight 3
    # collapsed G (7 classes, FID 283).
    # Q then lands at 76-81% over seeds 0-2, and G's codes pull it towards the digits G
    # happens to draw for one code (seed 1: 78.8% at step 624, 61.9% at 1,248). Q as its own
    # encoder taught by real images alone (ClusterGAN's encoder; IMSAT's clustering with
    # stroke width and slant among the changes a digit's class survives, entropy weights 0.1
    # and 0.4), G following its codes: 95.5-96.8%, but on seed 2 compiled G ignored z (FID
    # 78.6x, spread 0.006). With the mode-seeking term (weight 1) against that: 95.7-97.1% on
    # seeds 0-2, eager and compiled, every target met (docs/recipes.md).
    tuned_recipe = {**paper_recipe, "lr_g": 1e-3, "lr_d": 2e-4, "info_phase": "joint",
                    "info_cluster_weight": 1.0, "epochs": 40, "info_q": "encoder",
                    "info_q_real_only": True, "info_cluster_confidence": 0.1,
                    "info_cluster_balance": 0.4, "info_cluster_stroke": 1.0,
                    "info_cluster_shear": 0.3, "info_mode_seeking": 1.0}
    # the one departure that changes the nets: Q's own encoder, D the plain critic
    tuned_nets = "info_q"
    cont_dim = 2
    tiny_latent_dim = 10  # the seed's z; its G takes z ++ one-hot(10) ++ 2 continuous codes

    @property
    def cat_dim(self) -> int:
        """Values of the categorical code (``--info-categories``; the seed's 10)."""
        return self.cfg.info_categories

    def latent_spec(self) -> LatentSpec:
        return LatentSpec(self.cfg.latent_dim, self.cfg.latent_dist, cat_dim=self.cat_dim,
                          cont_dim=self.cont_dim)

    def tiny_generator(self):
        return InfoGANGenerator(self.latent.z_dim, self.cat_dim + self.cont_dim, self.cfg.ngf,
                                self.output_range, self.nets.channels)

    def __init__(self, cfg: TrainConfig, ops: Ops = TORCH_OPS):
        super().__init__(cfg, ops)
        self.Q = None  # built after G and D, so their initial weights do not depend on it
        cfg = self.cfg  # resolved: the architecture's widths
        if cfg.info_q_real_only and (cfg.info_q != "encoder" or cfg.info_phase != "joint"
                                     or not cfg.info_cluster_weight):
            raise UserError("--info-q-real-only needs Q's own encoder, the joint phase and a "
                            "clustering term to teach it: add --info-q encoder --info-phase "
                            "joint --info-cluster-weight 1, or add --no-info-q-real-only")
        if cfg.info_q == "encoder":  # Q as D's architecture without SN, with no say in D
            logvar = cfg.info_cont_loss == "nll"
            if self.nets.arch is Arch.TINY:
                self.Q = CodeEncoder(cfg.ndf, cfg.d_batch_norm, self.cat_dim, self.cont_dim,
                                     logvar, self.nets.channels)
            else:
                self.Q = build_info_discriminator(self.nets, None, cfg.d_batch_norm,
                                                  self.cat_dim, self.cont_dim, logvar,
                                                  self.q_hidden)

    @property
    def q_hidden(self) -> int:
        """Width of the paper's FC layer before Q's heads (``--info-head fc``), or 0."""
        return 128 if self.cfg.info_head == "fc" else 0

    def build_discriminator(self):
        if self.cfg.info_q == "encoder":  # Q has its own network: D is the plain critic
            if self.nets.arch is Arch.TINY:
                return DCGANDiscriminator(self.cfg.ndf, self.cfg.d_batch_norm, self.sn,
                                          self.cfg.minibatch_disc, self.nets.channels)
            return super().arch_discriminator()
        if self.cfg.minibatch_disc:
            raise UserError("infogan's D shares its features with the Q heads and takes no "
                            "minibatch-discrimination layer; drop --minibatch-disc")
        return super().build_discriminator()

    def tiny_discriminator(self):
        return InfoGANDiscriminator(self.cfg.ndf, self.cfg.d_batch_norm, self.sn, self.cat_dim,
                                    self.cont_dim, logvar_head=self.cfg.info_cont_loss == "nll",
                                    q_hidden=self.q_hidden,
                                    in_channels=self.nets.channels)

    def arch_discriminator(self):
        """The architecture's D with dense Q heads on its features."""
        return build_info_discriminator(self.nets, self.sn, self.cfg.d_batch_norm, self.cat_dim,
                                        self.cont_dim, self.cfg.info_cont_loss == "nll",
                                        self.q_hidden)

    # -- Q -----------------------------------------------------------------------------------
    def q_heads(self, x: torch.Tensor, fakes: bool = False) -> InfoHeads:
        """Q's outputs on ``x``: its own encoder's, or the heads on D's trunk (with D's logit).
        ``fakes``: ``x`` is G's; with ``--info-q-real-only`` Q reads their categorical code
        through constant weights, so G follows Q's clusters without moving them."""
        if self.Q is None:
            return self.D.heads(x)
        return self.Q.heads(x, fixed_clusters=fakes and self.cfg.info_q_real_only)

    def q_params(self) -> list[torch.nn.Parameter]:
        """What Q's terms train besides G: the encoder, or D (whose trunk Q shares)."""
        return list((self.Q if self.Q is not None else self.D).parameters())

    def predict_code(self, x: torch.Tensor) -> torch.Tensor:
        """Categorical-code logits ``[B, cat_dim]`` of images ``x`` (the evaluator's hook), with
        Q's BatchNorm in eval mode."""
        net = self.Q if self.Q is not None else self.D
        was_training = net.training
        net.eval()
        try:
            return self.q_heads(x).cat_logits
        finally:
            net.train(was_training)

    # -- the info phase --------------------------------------------------------------------
    def cont_loss(self, mu: torch.Tensor, logvar: torch.Tensor | None,
                  target: torch.Tensor) -> torch.Tensor:
        """MSE (3-head) or Gaussian NLL up to its constant (4-head) of ``target`` under Q."""
        if logvar is None:
            return F.mse_loss(mu, target)
        return 0.5 * (logvar + (target - mu).square() * torch.exp(-logvar)).mean()

    def info_terms(self, q, b: Batch) -> tuple[torch.Tensor, Logs]:
        """The mutual-information surrogate for Q's outputs ``q`` on fakes of ``b.latent``."""
        codes = b.latent["codes"]
        cat, cont = codes[:, :self.cat_dim], codes[:, self.cat_dim:]  # one-hot [B, k], [B, 2]
        cat_loss = F.cross_entropy(q.cat_logits, cat)  # one-hot probabilities as targets
        cont_loss = self.cont_loss(q.cont_mu, q.cont_logvar, cont)
        w = self.cfg.info_cont_weight
        loss = self.cfg.info_cat_weight * cat_loss + w * cont_loss
        acc = (q.cat_logits.argmax(1) == cat.argmax(1)).float().mean()
        logs = {"loss_info": loss.detach(), "info_cat": cat_loss.detach(),
                "info_cont": cont_loss.detach(), "info_cat_acc": acc.detach()}
        return loss, logs

    def info_loss(self, b: Batch) -> tuple[torch.Tensor, Logs]:
        """The seed's third phase: the information terms on fresh fakes, for G + D."""
        q = self.q_heads(self.augmented(self.generate(b.latent), b, 0), fakes=True)
        loss, logs = self.info_terms(q, b)
        return self.real_code_terms(loss, logs, b)

    @functools.cached_property
    def cluster_augment(self) -> Augment:
        return Augment(CLUSTER_TRANSFORMS, self.output_range, self.background)

    def draw_augmentation(self, batch: int, device,
                          generator: torch.Generator) -> torch.Tensor | None:
        """The augmentation draws, with the clustering term's when it is on: its moved copy
        uses view ``CLUSTER_VIEW``, with two appended columns (stroke width, shear) when
        ``--info-cluster-stroke`` or ``--info-cluster-shear`` is on."""
        cfg = self.cfg
        if cfg.info_cluster_weight > 0 and self.augment is None:
            u = self.cluster_augment.draw(batch, device, generator)
        else:
            u = super().draw_augmentation(batch, device, generator)
        if cfg.info_cluster_weight > 0 and (cfg.info_cluster_stroke or cfg.info_cluster_shear):
            extra = torch.rand(VIEWS, batch, 2, device=device, generator=generator)
            u = torch.cat([u, extra], dim=2)  # [VIEWS, B, PARAMS + 2]
        return u

    def cluster_terms(self, cat_logits: torch.Tensor, b: Batch) -> tuple[torch.Tensor, Logs]:
        """:func:`clustering_loss` of Q's categorical logits on ``b.real`` and on a randomly
        shifted, rotated and scaled copy of it, also slanted (``--info-cluster-shear``) and
        with its strokes thickened or thinned (``--info-cluster-stroke``): a digit's class
        survives every one of these, its writer's hand does not."""
        cfg = self.cfg
        u = b.aug[CLUSTER_VIEW]  # [B, PARAMS (+ 2)]
        moved = self.cluster_augment(b.real, u)
        if cfg.info_cluster_shear > 0:
            lo, hi = self.output_range.bounds
            fill = lo + self.background * (hi - lo)
            moved = shear(moved, (2 * u[:, SHEAR_COLUMN] - 1) * cfg.info_cluster_shear, fill)
        if cfg.info_cluster_stroke > 0:
            moved = stroke_width(moved, (2 * u[:, STROKE_COLUMN] - 1) * cfg.info_cluster_stroke)
        return clustering_loss(cat_logits, self.q_heads(moved).cat_logits,
                               self.cfg.info_cluster_confidence, self.cfg.info_cluster_balance)

    def real_code_terms(self, loss: torch.Tensor, logs: Logs, b: Batch):
        """Q's terms on real images: ``--supervised-code``, ``--thickness-guidance``,
        ``--info-cluster-weight``."""
        w = self.cfg.info_cont_weight
        cfg = self.cfg
        if cfg.supervised_code or cfg.thickness_guidance or cfg.info_cluster_weight:
            qr = self.q_heads(self.augmented(b.real, b, 1))
            if cfg.info_cluster_weight:
                cluster, clogs = self.cluster_terms(qr.cat_logits, b)
                loss = loss + cfg.info_cluster_weight * cluster
                logs.update(clogs)
            if self.cfg.supervised_code:
                sup = F.cross_entropy(qr.cat_logits, b.labels)
                loss = loss + sup
                logs["info_sup"] = sup.detach()
            if self.cfg.thickness_guidance:
                target = thickness_quantile(b.real, b.labels)[:, None]  # [B, 1]
                logvar0 = qr.cont_logvar[:, :1] if qr.cont_logvar is not None else None
                thick = self.cont_loss(qr.cont_mu[:, :1], logvar0, target)
                loss = loss + w * thick
                logs["info_thick"] = thick.detach()
        return loss, logs

    # -- the paper's set-up: the information term in the D and G losses ------------------
    def joint_d_loss(self, b: Batch) -> tuple[torch.Tensor, Logs]:
        """min over D and Q of the adversarial D loss - I(c; G(z, c)) (its surrogate); with
        a separate Q encoder the D phase is D's alone (Q trains with G)."""
        if self.Q is not None:
            return self.d_loss(b)
        with torch.no_grad():
            fake = self.generate(b.latent)
        real_logit = self.critic(self.augmented(b.real, b, 0), b.labels)
        q = self.D.heads(self.augmented(fake, b, 1))
        adv = self.adversarial_d(real_logit, q.logit)
        info, logs = self.info_terms(q, b)
        loss, logs = self.real_code_terms(adv + info, logs, b)
        return loss, {**logs, "loss_d": loss.detach(), "d_real": real_logit.detach().mean(),
                      "d_fake": q.logit.detach().mean()}

    def joint_g_loss(self, b: Batch) -> tuple[torch.Tensor, Logs]:
        """min over G of the adversarial G loss - I(c; G(z, c)); with a separate Q encoder
        also over Q, with Q's terms on real images; plus the mode-seeking term when on."""
        if self.cfg.info_mode_seeking:
            b = b._replace(latent=paired_codes(b.latent))
        fake = self.generate(b.latent)
        seen = self.augmented(fake, b, 0)
        q = self.q_heads(seen, fakes=True)
        logit = q.logit if self.Q is None else self.critic(seen, None)
        info, logs = self.info_terms(q, b)
        loss = self.adversarial_g(logit) + info
        out = {"loss_g": loss.detach(), "info_g": info.detach()}
        if self.cfg.info_mode_seeking:
            ms, ratio = mode_seeking_loss(fake, b.latent["z"])
            loss = loss + self.cfg.info_mode_seeking * ms
            out["z_effect"] = ratio.detach()
        if self.Q is not None:
            loss, logs = self.real_code_terms(loss, logs, b)
            out.update({k: v for k, v in logs.items() if k.startswith(("cluster_", "info_"))})
        return loss, {**out, "loss_g": loss.detach()}

    def phases(self) -> list[Phase]:
        """D, G, then the info phase over G + D (the seed's third Adam); with
        ``--info-phase joint`` only D and G, each with the information term."""
        cfg = self.cfg
        if cfg.info_phase == "joint":
            if cfg.feature_matching or cfg.historical_averaging:
                raise UserError("--info-phase joint computes InfoGAN's own D and G losses; "
                                "drop --feature-matching / --historical-averaging")
            g_params = list(self.G.parameters())
            if self.Q is not None:  # the encoder learns with G, as ClusterGAN's does
                g_params += list(self.Q.parameters())
            return [Phase("D", self.joint_d_loss, list(self.D.parameters()), cfg.lr_d, 1,
                          self.after_d),
                    Phase("G", self.joint_g_loss, g_params, cfg.lr_g, cfg.n_critic,
                          self.after_g)]
        if cfg.info_mode_seeking:
            raise UserError("--info-mode-seeking is a term of the joint G loss; add "
                            "--info-phase joint or drop it")
        params = list(self.G.parameters()) + self.q_params()
        return [*super().phases(), Phase("info", self.info_loss, params, cfg.info_lr)]


VARIANT = InfoGAN
