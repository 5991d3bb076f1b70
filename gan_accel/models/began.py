"""BEGAN's nets, scaled down for 28x28: an autoencoder D and a G shaped like its decoder.

As in the BEGAN paper, conv layers are 3x3 with ELU, downsampling is a stride-2 conv,
upsampling is nearest-neighbour, and the bottleneck is a fully connected layer of ``h_dim``
units; G has the decoder's architecture with its own weights. Widths here are small
(``nf`` = 16) so a few hundred steps train on a CPU in minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from .dcgan import Wrap, _identity


def _conv(cin: int, cout: int, stride: int, sn: Wrap) -> nn.Module:
    return sn(nn.Conv2d(cin, cout, 3, stride, 1))


_OUTPUT = {"unit": nn.Sigmoid, "symmetric": nn.Tanh, "linear": nn.Identity}


class BEGANDecoder(nn.Module):
    """h [B, h_dim] -> image [B, 1, 28, 28]; last layer Sigmoid ('unit'), Tanh ('symmetric')
    or none ('linear', as the BEGAN paper's autoencoder: no saturating output to get stuck in).
    """

    def __init__(self, h_dim: int = 32, nf: int = 16, output_range: str = "unit",
                 sn: Wrap | None = None):
        super().__init__()
        sn = sn or _identity
        self.nf, self.output_range = nf, output_range
        self.fc = sn(nn.Linear(h_dim, nf * 7 * 7))
        self.net = nn.Sequential(
            nn.ELU(), _conv(nf, nf, 1, sn), nn.ELU(),  # [B, nf, 7, 7]
            nn.Upsample(scale_factor=2), _conv(nf, nf, 1, sn), nn.ELU(),  # [B, nf, 14, 14]
            nn.Upsample(scale_factor=2), _conv(nf, nf, 1, sn), nn.ELU(),  # [B, nf, 28, 28]
            _conv(nf, 1, 1, sn),  # [B, 1, 28, 28]
            _OUTPUT[output_range](),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(h).view(h.shape[0], self.nf, 7, 7))


class BEGANGenerator(BEGANDecoder):
    """``G(z [B, z_dim]) -> [B, 1, 28, 28]``: the decoder architecture, separate weights."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z)


class BEGANDiscriminator(nn.Module):
    """Autoencoder D: ``D(x)`` is the per-sample L1 reconstruction error ``[B]``.

    ``features(x)`` is the ``[B, h_dim]`` bottleneck code; ``reconstruct(x)`` the image.
    """

    def __init__(self, h_dim: int = 32, nf: int = 16, sn: Wrap | None = None):
        super().__init__()
        sn = sn or _identity
        self.encoder = nn.Sequential(
            _conv(1, nf, 1, sn), nn.ELU(),  # [B, nf, 28, 28]
            _conv(nf, 2 * nf, 2, sn), nn.ELU(),  # [B, 2nf, 14, 14]
            _conv(2 * nf, 3 * nf, 2, sn), nn.ELU(),  # [B, 3nf, 7, 7]
            nn.Flatten(), sn(nn.Linear(3 * nf * 7 * 7, h_dim)),  # [B, h_dim]
        )
        self.decoder = BEGANDecoder(h_dim, nf, "linear", sn)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.reconstruct(x) - x).abs().flatten(1).mean(1)  # L(x) = |x - AE(x)|, [B]
