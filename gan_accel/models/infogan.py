"""The seed README's tiny InfoGAN: the DCGAN generator on z ++ codes, D with Q heads.

G: the DCGAN generator with a 22-channel input (z 10 ++ one-hot 10 ++ continuous 2):
184,896 parameters. D: the DCGAN trunk (three SN conv blocks, BN in the last two) shared by
three 4x4 conv heads on its [B, 128, 4, 4] output, 166,796 parameters; 170,894 with the
fourth (log-variance) head of the Gaussian-NLL variant. The seed's counts pin the bias
choices: the D head has no bias (as in DCGAN), the Q heads have one each:

    trunk 140,160 + D 2,048 + Q-cat (20,480 + 10) + Q-mu (4,096 + 2)  = 166,796
                                              + Q-logvar (4,096 + 2)  = 170,894
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..ranges import OutputRange
from .dcgan import DCGANGenerator, Wrap, _identity, dcgan_trunk
from .layers import stateless_call


class InfoGANGenerator(nn.Module):
    """``G(z [B, z_dim], codes [B, code_dim]) -> [B, C, 28, 28]``: DCGAN G on z ++ codes."""

    def __init__(self, z_dim: int = 10, code_dim: int = 12, ngf: int = 16,
                 output_range: OutputRange = OutputRange.UNIT, out_channels: int = 1):
        super().__init__()
        self.z_dim, self.code_dim, self.output_range = z_dim, code_dim, output_range
        self.net = DCGANGenerator(z_dim + code_dim, ngf, output_range, out_channels)

    def forward(self, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, codes], dim=1))


class InfoHeads(NamedTuple):
    logit: torch.Tensor | None  # [B] real/fake logit (None from a separate Q encoder)
    cat_logits: torch.Tensor  # [B, cat_dim] categorical-code logits
    cont_mu: torch.Tensor  # [B, cont_dim] continuous-code estimate (mean)
    cont_logvar: torch.Tensor | None  # [B, cont_dim] its log-variance (4-head model only)


class InfoGANDiscriminator(nn.Module):
    """``D(x) -> logit [B]``; :meth:`heads` gives D and Q outputs from one trunk pass."""

    def __init__(self, ndf: int = 16, batch_norm: bool = True, sn: Wrap | None = None,
                 cat_dim: int = 10, cont_dim: int = 2, logvar_head: bool = False,
                 q_hidden: int = 0, in_channels: int = 1):
        super().__init__()
        sn = sn or _identity
        c = ndf * 8
        self.trunk = dcgan_trunk(ndf, batch_norm, sn, in_channels)  # [B, 128, 4, 4]
        self.head = sn(nn.Conv2d(c, 1, 4, 1, 0, bias=False))  # D: as in DCGAN, no bias
        self.q_body = None
        if q_hidden:  # the InfoGAN paper's Q: FC + BN + LeakyReLU on D's features, then heads
            self.q_body = nn.Sequential(nn.Flatten(), nn.Linear(c * 16, q_hidden, bias=False),
                                        nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.2),
                                        nn.Unflatten(1, (q_hidden, 1, 1)))
            c, k = q_hidden, 1
        else:
            k = 4
        self.q_cat = sn(nn.Conv2d(c, cat_dim, k, 1, 0))  # Q heads: with bias (seed counts)
        self.q_mu = sn(nn.Conv2d(c, cont_dim, k, 1, 0))
        self.q_logvar = sn(nn.Conv2d(c, cont_dim, k, 1, 0)) if logvar_head else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).flatten()

    def heads(self, x: torch.Tensor) -> InfoHeads:
        h = self.trunk(x)
        q = self.q_body(h) if self.q_body is not None else h
        logvar = self.q_logvar(q).flatten(1) if self.q_logvar is not None else None
        return InfoHeads(self.head(h).flatten(), self.q_cat(q).flatten(1),
                         self.q_mu(q).flatten(1), logvar)


class CodeEncoder(nn.Module):
    """Q as its own network (as ClusterGAN's encoder): ``heads(x)`` -> :class:`InfoHeads`
    with ``logit`` None. The DCGAN trunk without spectral norm (Q is not a critic) and the
    seed's conv heads on its ``[B, 8 ndf, 4, 4]`` output: 164,748 parameters at ndf 16 with
    the seed's two continuous codes (168,846 with the log-variance head).

    Sharing D's trunk, every term that teaches Q also moves D; with its own trunk, Q's terms
    (the information term, the clustering of real images) leave the critic alone.
    """

    def __init__(self, ndf: int = 16, batch_norm: bool = True, cat_dim: int = 10,
                 cont_dim: int = 2, logvar_head: bool = False, in_channels: int = 1):
        super().__init__()
        c = ndf * 8
        self.trunk = dcgan_trunk(ndf, batch_norm, in_channels=in_channels)  # [B, 128, 4, 4]
        self.q_cat = nn.Conv2d(c, cat_dim, 4, 1, 0)
        self.q_mu = nn.Conv2d(c, cont_dim, 4, 1, 0)
        self.q_logvar = nn.Conv2d(c, cont_dim, 4, 1, 0) if logvar_head else None

    def heads(self, x: torch.Tensor, fixed_clusters: bool = False) -> InfoHeads:
        """Q's outputs on ``x``. ``fixed_clusters``: how G follows a clustering that real
        images alone teach. The categorical code is read with the trunk and its head as
        constants (gradients reach ``x``, not their weights); the continuous codes through
        the trunk as it learns, so these images teach the trunk what those codes vary;
        BatchNorm's running statistics stay those of real images."""
        if not fixed_clusters:
            h = self.trunk(x)
            return self._heads(h, self.q_cat(h))
        cat = stateless_call(self.q_cat, stateless_call(self.trunk, x, frozen=True), frozen=True)
        return self._heads(stateless_call(self.trunk, x), cat)

    def _heads(self, h: torch.Tensor, cat: torch.Tensor) -> InfoHeads:
        logvar = self.q_logvar(h).flatten(1) if self.q_logvar is not None else None
        return InfoHeads(None, cat.flatten(1), self.q_mu(h).flatten(1), logvar)
