"""What a GAN variant is: a generator, a discriminator, a latent space, and training phases.

A :class:`Variant` is an ``nn.Module`` holding ``G``, ``D`` and any extra state (so one
``state_dict`` checkpoints everything). :meth:`Variant.phases` lists the optimisation phases
of one training step (D, G, and e.g. InfoGAN's info phase); the trainer runs them in order,
each phase's loss function optionally compiled. New variants subclass :class:`Variant` and
override only what differs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from ..config import TrainConfig
from ..latent import LatentSpec
from ..models.layers import FixedBatchGenerator
from ..ops import TORCH_OPS, Ops
from ..ranges import OutputRange
from ..seeding import vbn_batch_seed
from .augment import Augment, parse_policy
from .losses import BCE, AdversarialLoss
from .tricks import HistoricalAverage, feature_matching_loss

Logs = dict[str, torch.Tensor]
VBN_BATCH = 64  # rows of virtual batch norm's fixed batch


class Batch(NamedTuple):
    real: torch.Tensor  # [B, 1, 28, 28] in the model's range
    labels: torch.Tensor  # [B] int64
    latent: dict[str, torch.Tensor]
    aug: torch.Tensor | None = None  # [views, B, params] augmentation uniforms, or None: off


@dataclass
class Phase:
    """One optimisation phase of a training step."""

    name: str
    loss: Callable[[Batch], tuple[torch.Tensor, Logs]]
    params: list[nn.Parameter]
    lr: float
    every: int = 1  # run on steps where step % every == 0
    after: Callable[[], None] | None = None  # eager hook after the optimizer step


class Variant(nn.Module, ABC):
    """Base class: a BCE/LSGAN/WGAN-style adversarial pair with the improved-GAN tricks."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    # ``paper_recipe``: the paper's / seed's hyperparameters (``--recipe paper``).
    # ``tuned_recipe``: the default, ``paper_recipe`` plus the departures measured on the
    # embedded subset (each stated where the variant sets it, with its results file; the run
    # history is in docs/recipes.md); it carries its own epochs.
    paper_recipe: ClassVar[dict] = {}
    tuned_recipe: ClassVar[dict] = {}
    loss: ClassVar[AdversarialLoss] = BCE()
    output_range: ClassVar[OutputRange] = OutputRange.UNIT  # G's pixels; data is mapped to it

    def __init__(self, cfg: TrainConfig, ops: Ops = TORCH_OPS):
        super().__init__()
        self.cfg, self.ops = cfg, ops
        self.latent = self.latent_spec()
        self.G = self.build_generator()
        if cfg.virtual_batch_norm:
            self.G = FixedBatchGenerator(self.G, self.vbn_batch_latent())
        self.D = self.build_discriminator()
        policy = parse_policy(cfg.augment)
        self.augment = Augment(policy, self.output_range, self.background) if policy else None
        self.hist = None
        if cfg.historical_averaging > 0:
            self.hist = nn.ModuleDict({"G": HistoricalAverage(self.G),
                                       "D": HistoricalAverage(self.D)})

    @property
    def background(self) -> float:
        """The data's background gray in [0, 1] (augmentation fills with it); 0 = black for
        configs that predate the field."""
        return self.cfg.background if self.cfg.background is not None else 0.0

    # -- architecture ----------------------------------------------------------------------
    def latent_spec(self) -> LatentSpec:
        return LatentSpec(self.cfg.latent_dim, self.cfg.latent_dist)

    def vbn_batch_latent(self) -> dict[str, torch.Tensor]:
        """Virtual batch norm's fixed batch of latents, drawn from the run's seed."""
        gen = torch.Generator().manual_seed(vbn_batch_seed(self.cfg.seed))
        return self.latent.sample(VBN_BATCH, "cpu", gen)

    @abstractmethod
    def build_generator(self) -> nn.Module:
        """The generator: ``G(**latent) -> [B, 1, 28, 28]`` in ``output_range``."""

    @abstractmethod
    def build_discriminator(self) -> nn.Module:
        """The discriminator: ``D(x[, label]) -> logits [B]`` with ``D.features``."""

    @property
    def sn(self):
        """The spectral-norm wrapper for D's layers, or None when it is switched off."""
        return self.ops.spectral_norm if self.cfg.spectral_norm else None

    # -- forward helpers -------------------------------------------------------------------
    def generate(self, latent: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.G(**latent)

    def draw_augmentation(self, batch: int, device,
                          generator: torch.Generator) -> torch.Tensor | None:
        """The per-phase uniforms the losses use (``Batch.aug``): augmentation draws, or
        None when nothing is random beyond the latent."""
        return self.augment.draw(batch, device, generator) if self.augment else None

    def augmented(self, x: torch.Tensor, b: Batch, view: int) -> torch.Tensor:
        """``x`` as D sees it: augmented with the phase's ``view``-th draw when augmenting."""
        if self.augment is None or b.aug is None:
            return x
        return self.augment(x, b.aug[view], self.cfg.augment_p)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's logits [B]; conditional variants pass the labels on."""
        return self.D(x, labels) if self.latent.num_classes else self.D(x)

    def critic_features(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.D.features(x, labels) if self.latent.num_classes else self.D.features(x)

    # -- losses ----------------------------------------------------------------------------
    def adversarial_d(self, real_logit, fake_logit) -> torch.Tensor:
        return self.loss.d(real_logit, fake_logit, self.cfg.real_label)

    def adversarial_g(self, fake_logit) -> torch.Tensor:
        return self.loss.g(fake_logit)

    def fake_labels(self, b: Batch) -> torch.Tensor | None:
        return b.latent.get("label")

    def d_loss(self, b: Batch) -> tuple[torch.Tensor, Logs]:
        with torch.no_grad():
            fake = self.generate(b.latent)
        real_logit = self.critic(self.augmented(b.real, b, 0), b.labels)
        fake_logit = self.critic(self.augmented(fake, b, 1), self.fake_labels(b))
        loss = self.adversarial_d(real_logit, fake_logit)
        if self.hist is not None:
            loss = loss + self.cfg.historical_averaging * self.hist["D"].penalty(self.D)
        return loss, {"loss_d": loss.detach(), "d_real": real_logit.detach().mean(),
                      "d_fake": fake_logit.detach().mean()}

    def g_loss(self, b: Batch) -> tuple[torch.Tensor, Logs]:
        fake = self.augmented(self.generate(b.latent), b, 0)
        if self.cfg.feature_matching:
            real_features = self.critic_features(self.augmented(b.real, b, 1), b.labels)
            loss = feature_matching_loss(real_features,
                                         self.critic_features(fake, self.fake_labels(b)))
        else:
            loss = self.adversarial_g(self.critic(fake, self.fake_labels(b)))
        if self.hist is not None:
            loss = loss + self.cfg.historical_averaging * self.hist["G"].penalty(self.G)
        return loss, {"loss_g": loss.detach()}

    # -- the step --------------------------------------------------------------------------
    def after_d(self) -> None:
        if self.hist is not None:
            self.hist["D"].update(self.D)

    def after_g(self) -> None:
        if self.hist is not None:
            self.hist["G"].update(self.G)

    def phases(self) -> list[Phase]:
        """D phase every step, G phase every ``n_critic`` steps."""
        cfg = self.cfg
        return [
            Phase("D", self.d_loss, list(self.D.parameters()), cfg.lr_d, 1, self.after_d),
            Phase("G", self.g_loss, list(self.G.parameters()), cfg.lr_g, cfg.n_critic,
                  self.after_g),
        ]

    def extra_state_meta(self) -> dict:
        """JSON facts about the variant for checkpoints and exported models."""
        return {"variant": self.name, "latent": self.latent.to_meta(),
                "output_range": self.output_range.value}
