"""The adversarial losses, one small object each: D's loss on (real, fake) logits, G's on fake.

``real_target`` is the real images' target where the loss has one (one-sided label
smoothing: 0.9 instead of 1); the losses without a target ignore it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor


class AdversarialLoss(ABC):
    name = "adversarial"

    @abstractmethod
    def d(self, real_logit: Tensor, fake_logit: Tensor, real_target: float = 1.0) -> Tensor:
        """D's (critic's) loss on logits [B] of real and generated images."""

    @abstractmethod
    def g(self, fake_logit: Tensor) -> Tensor:
        """G's loss on D's logits [B] of generated images."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BCE(AdversarialLoss):
    """The GAN minimax loss with the non-saturating G loss (maximise log D(G(z)))."""

    name = "bce"

    def d(self, real_logit, fake_logit, real_target=1.0):
        real = F.binary_cross_entropy_with_logits(real_logit,
                                                  torch.full_like(real_logit, real_target))
        fake = F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        return real + fake

    def g(self, fake_logit):
        return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


class LeastSquares(AdversarialLoss):
    """LSGAN (a=0, b=real_target, c=1): D -> b on real, 0 on fake; G pushes D(G(z)) -> 1."""

    name = "least-squares"

    def d(self, real_logit, fake_logit, real_target=1.0):
        return 0.5 * ((real_logit - real_target).square().mean() + fake_logit.square().mean())

    def g(self, fake_logit):
        return 0.5 * (fake_logit - 1.0).square().mean()


class Wasserstein(AdversarialLoss):
    """The critic's estimate of the Wasserstein-1 distance, E D(fake) - E D(real)."""

    name = "wasserstein"

    def d(self, real_logit, fake_logit, real_target=1.0):
        return fake_logit.mean() - real_logit.mean()

    def g(self, fake_logit):
        return -fake_logit.mean()


class Hinge(AdversarialLoss):
    """SN-GAN's hinge loss: E relu(1 - D(x)) + E relu(1 + D(G(z))); G: -E D(G(z))."""

    name = "hinge"

    def d(self, real_logit, fake_logit, real_target=1.0):
        return F.relu(1.0 - real_logit).mean() + F.relu(1.0 + fake_logit).mean()

    def g(self, fake_logit):
        return -fake_logit.mean()
