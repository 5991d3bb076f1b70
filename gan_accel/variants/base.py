"""What a GAN variant is: a generator, a discriminator, a latent space, and training phases.

A :class:`Variant` is an ``nn.Module`` holding ``G``, ``D`` and any extra state (so one
``state_dict`` checkpoints everything). :meth:`Variant.phases` lists the optimisation phases
of one training step (D, G, and e.g. InfoGAN's info phase); the trainer runs them in order,
each phase's loss function optionally compiled. New variants subclass :class:`Variant` and
override only what differs.

Nets: a variant trains with the architectures in its ``archs`` (:class:`~gan_accel.models.Arch`,
docs/architectures.md). ``--arch auto`` picks the seed's tiny nets at 28x28 and the
variant's ``paper_arch`` at 32 and 64. :meth:`Variant.resolved` turns every ``0`` / ``auto``
network field of a config into the concrete value the run trains with; the tiny nets are
the seed's, built by each variant (:meth:`Variant.tiny_generator`), every other
architecture comes from :mod:`gan_accel.models.builders`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from ..config import TrainConfig
from ..data import Dataset
from ..errors import UserError
from ..latent import LatentSpec
from ..models.arch import AUTO, Arch
from ..models.builders import NetShape, build_discriminator, build_generator
from ..models.layers import FixedBatchGenerator
from ..ops import TORCH_OPS, Ops
from ..ranges import OutputRange
from ..seeding import vbn_batch_seed
from .augment import Augment, parse_policy
from .losses import BCE, AdversarialLoss
from .tricks import HistoricalAverage, feature_matching_loss

Logs = dict[str, torch.Tensor]
VBN_BATCH = 64  # rows of virtual batch norm's fixed batch
# A config whose data shape is still 0 (a bare recipe, a run saved before images had a
# shape) describes the MNIST-like data every such run trained on: 1 x 28 x 28, 10 classes.
MNIST_LIKE = (Dataset.MNIST_5K, Dataset.MNIST, Dataset.FASHION_MNIST)
MNIST_SHAPE = (1, 28)
MNIST_CLASSES = 10
# the architectures whose D returns a logit (the tiny nets are each variant's own seed nets)
LOGIT_ARCHS = frozenset({Arch.TINY, Arch.MLP, Arch.DCGAN, Arch.SNGAN_CNN, Arch.RESNET})


class Batch(NamedTuple):
    real: torch.Tensor  # [B, C, R, R] in the model's range
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
    # the tuned recipe's field that builds other nets than the paper's (None: same nets)
    tuned_nets: ClassVar[str | None] = None
    loss: ClassVar[AdversarialLoss] = BCE()
    output_range: ClassVar[OutputRange] = OutputRange.UNIT  # G's pixels; data is mapped to it
    # the architectures this variant trains with, and ``--arch auto``'s pick at 32 and 64 px
    archs: ClassVar[frozenset[Arch]] = LOGIT_ARCHS
    paper_arch: ClassVar[Arch] = Arch.DCGAN
    tiny_latent_dim: ClassVar[int] = 16  # the seed's noise width for its tiny nets
    uses_labels: ClassVar[bool] = False  # G and D are conditioned on the class label

    def __init__(self, cfg: TrainConfig, ops: Ops = TORCH_OPS):
        super().__init__()
        cfg = self.resolved(cfg)
        self.cfg, self.ops = cfg, ops
        self.nets = NetShape(Arch(cfg.arch), cfg.channels, cfg.resolution, cfg.ngf, cfg.ndf)
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
    @classmethod
    def choose_arch(cls, resolution: int, requested: str = AUTO) -> Arch:
        """The architecture ``--arch requested`` means for this variant at ``resolution``.

        Raises:
            UserError: for an architecture this variant does not train with, or one without
                a form at ``resolution``.
        """
        if requested == AUTO:
            chosen = Arch.TINY if resolution == 28 else cls.paper_arch
            assert resolution in chosen.resolutions, (cls.name, resolution)
            return chosen
        chosen = Arch(requested)
        if chosen not in cls.archs:
            names = ", ".join(a.value for a in Arch if a in cls.archs)
            if chosen.facts.autoencoder:
                why = f"--arch {chosen} is BEGAN's autoencoder D: only --model began trains with it"
            elif any(a.facts.autoencoder for a in cls.archs):
                why = f"--model {cls.name} needs an autoencoder D and --arch {chosen} has none"
            else:
                why = f"--model {cls.name} does not train with --arch {chosen}"
            raise UserError(f"{why}; use --arch auto or one of {names}")
        if resolution not in chosen.resolutions:
            sizes = ", ".join(map(str, chosen.resolutions))
            raise UserError(f"--arch {chosen} has no {resolution}x{resolution} form (it is "
                            f"built for {sizes} px); pass --resolution {chosen.resolutions[-1]} "
                            "or --arch auto")
        return chosen

    @classmethod
    def resolved(cls, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with every network field concrete: the image shape (when the data left it
        0: MNIST-like 1 x 28 x 28, 10 classes), ``arch``, ``ngf`` / ``ndf`` (the
        architecture's width), ``latent_dim`` (the architecture's, or the seed's for the tiny
        nets) and ``num_classes``. Idempotent; consumes no randomness.

        Raises:
            UserError: for an architecture that does not fit the variant or the resolution,
                or a label-conditioned variant on data without classes.
        """
        channels, resolution, num_classes = cfg.channels, cfg.resolution, cfg.num_classes
        mnist_like = Dataset(cfg.dataset) in MNIST_LIKE
        if not (channels and resolution):
            assert mnist_like, f"resolve {cfg.dataset}'s image shape before building its nets"
            channels, resolution = channels or MNIST_SHAPE[0], resolution or MNIST_SHAPE[1]
        if not num_classes and mnist_like:
            num_classes = MNIST_CLASSES
        if cls.uses_labels and num_classes < 2:
            raise UserError(f"--model {cls.name} is conditioned on class labels and "
                            f"{cfg.dataset} has none; put the images in one subfolder per "
                            "class, or train an unconditional model")
        chosen = cls.choose_arch(resolution, cfg.arch)
        latent = chosen.facts.latent_dim if chosen is not Arch.TINY else cls.tiny_latent_dim
        return dataclasses.replace(
            cfg, channels=channels, resolution=resolution, num_classes=num_classes,
            arch=chosen.value, ngf=cfg.ngf or chosen.width, ndf=cfg.ndf or chosen.width,
            latent_dim=cfg.latent_dim or latent)

    def latent_spec(self) -> LatentSpec:
        return LatentSpec(self.cfg.latent_dim, self.cfg.latent_dist)

    def vbn_batch_latent(self) -> dict[str, torch.Tensor]:
        """Virtual batch norm's fixed batch of latents, drawn from the run's seed."""
        gen = torch.Generator().manual_seed(vbn_batch_seed(self.cfg.seed))
        return self.latent.sample(VBN_BATCH, "cpu", gen)

    def build_generator(self) -> nn.Module:
        """The generator: ``G(**latent) -> [B, C, R, R]`` in ``output_range``."""
        return self.tiny_generator() if self.nets.arch is Arch.TINY else self.arch_generator()

    def build_discriminator(self) -> nn.Module:
        """The discriminator: ``D(x[, label]) -> logits [B]`` with ``D.features``."""
        if self.nets.arch is Arch.TINY:
            return self.tiny_discriminator()
        return self.arch_discriminator()

    def tiny_generator(self) -> nn.Module:
        """The seed's tiny 28x28 generator of this variant."""
        raise NotImplementedError(f"{self.name} has no tiny nets")

    def tiny_discriminator(self) -> nn.Module:
        """The seed's tiny 28x28 discriminator of this variant."""
        raise NotImplementedError(f"{self.name} has no tiny nets")

    def arch_generator(self) -> nn.Module:
        """The registry architecture's G on ``z ++ embed(label) ++ codes``."""
        spec = self.latent
        return build_generator(self.nets, spec.z_dim + spec.code_dim, self.output_range,
                               spec.num_classes)

    def arch_discriminator(self) -> nn.Module:
        """The registry architecture's D (a projection D when conditioned on labels)."""
        return build_discriminator(self.nets, self.sn, self.cfg.d_batch_norm,
                                   self.latent.num_classes, self.cfg.minibatch_disc)

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
