"""The discriminator every scalable architecture shares: a feature trunk and its heads.

``D(x[, label]) -> logits [B]``: the architecture's trunk maps images to ``[B, F]`` features
(``D.features``), a dense head maps them to one logit. With classes (cGAN), the label enters
by projection (Miyato & Koyama 2018): ``logit += <embed(y), features>``. With minibatch
discrimination the head sees each sample's closeness to the batch beside its features.
:class:`InfoDiscriminator` adds InfoGAN's Q heads on the same features.
"""

from __future__ import annotations

import torch
from torch import nn

from .dcgan import Wrap, _identity
from .infogan import InfoHeads
from .layers import MinibatchDiscrimination, stateless_call


class Discriminator(nn.Module):
    """``D(x [B, C, R, R], label [B] | None) -> logits [B]`` on a trunk's ``[B, F]`` features."""

    def __init__(self, trunk: nn.Module, features: int, sn: Wrap | None = None,
                 head_bias: bool = True, num_classes: int = 0, minibatch_disc: bool = False):
        super().__init__()
        sn = sn or _identity
        self.trunk = trunk
        self.mbd = MinibatchDiscrimination(features) if minibatch_disc else None
        extra = self.mbd.kernels if self.mbd is not None else 0
        self.head = sn(nn.Linear(features + extra, 1, bias=head_bias))
        self.proj = sn(nn.Embedding(num_classes, features)) if num_classes else None

    def features(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.trunk(x)

    def logit(self, f: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """The logit [B] from features ``f`` [B, F] (and the label, with projection)."""
        out = self.head(self.mbd(f) if self.mbd is not None else f).flatten()
        if self.proj is not None:
            out = out + (self.proj(label) * f).sum(1)
        return out

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.logit(self.trunk(x), label)


class InfoDiscriminator(Discriminator):
    """D with InfoGAN's Q heads on its features: :meth:`heads` gives D and Q from one pass.

    Q: dense heads (with bias) for the categorical logits, the continuous codes' means and,
    for the Gaussian NLL, their log-variances; with ``q_hidden`` a dense layer + BN +
    LeakyReLU before them (the InfoGAN paper's Q).
    """

    def __init__(self, trunk: nn.Module, features: int, sn: Wrap | None = None,
                 head_bias: bool = True, cat_dim: int = 10, cont_dim: int = 2,
                 logvar_head: bool = False, q_hidden: int = 0):
        super().__init__(trunk, features, sn, head_bias)
        sn = sn or _identity
        self.q_body = None
        width = features
        if q_hidden:
            self.q_body = nn.Sequential(nn.Linear(features, q_hidden, bias=False),
                                        nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.2))
            width = q_hidden
        self.q_cat = sn(nn.Linear(width, cat_dim))
        self.q_mu = sn(nn.Linear(width, cont_dim))
        self.q_logvar = sn(nn.Linear(width, cont_dim)) if logvar_head else None

    def heads(self, x: torch.Tensor, fixed_clusters: bool = False) -> InfoHeads:
        """D's logit and Q's outputs on ``x``; ``fixed_clusters`` as in
        :meth:`~.infogan.CodeEncoder.heads` (used when this net is Q's own encoder)."""
        if not fixed_clusters:
            f = self.trunk(x)
            q = self.q_body(f) if self.q_body is not None else f
            return self._heads(f, q, self.q_cat(q))
        f, q = self._q_features(x, frozen=False)
        _, fixed = self._q_features(x, frozen=True)
        return self._heads(f, q, stateless_call(self.q_cat, fixed, frozen=True))

    def _q_features(self, x: torch.Tensor, frozen: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The trunk's features and Q's, leaving BatchNorm's running statistics alone."""
        f = stateless_call(self.trunk, x, frozen)
        return f, (stateless_call(self.q_body, f, frozen) if self.q_body is not None else f)

    def _heads(self, f: torch.Tensor, q: torch.Tensor, cat: torch.Tensor) -> InfoHeads:
        logvar = self.q_logvar(q) if self.q_logvar is not None else None
        return InfoHeads(self.logit(f), cat, self.q_mu(q), logvar)
