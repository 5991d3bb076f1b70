"""BEGAN's nets for 28x28: an autoencoder D (per-sample L1 reconstruction error) and a G.

The BEGAN paper's nets (3x3 ELU conv stacks, nearest-neighbour upsampling, no BN) are sized
for 64x64 faces. Scaled down to 28x28 and a CPU budget they did not learn digits here: G
settled on grey or blob images that the weak autoencoder reconstructs more easily than real
digits, where the equilibrium term never engages. The layout that trains on MNIST in a few
thousand steps is the small one MNIST BEGANs commonly use:

* D: one stride-2 conv encoder to a fully connected bottleneck of ``h_dim`` units, and a
  decoder from the bottleneck back through a fully connected layer (+ BN) and one stride-2
  transposed conv, Tanh output (the data range);
* G: fully connected to ``8 ngf x 7 x 7`` (+ BN), two stride-2 transposed convs (BN between),
  Tanh output.
"""

from __future__ import annotations

import torch
from torch import nn

from .dcgan import Wrap, _identity


class BEGANGenerator(nn.Module):
    """``G(z [B, z_dim]) -> [B, C, 28, 28]`` in [-1, 1] (Tanh)."""

    def __init__(self, z_dim: int = 32, ngf: int = 16, out_channels: int = 1):
        super().__init__()
        self.c = 8 * ngf
        self.fc = nn.Sequential(nn.Linear(z_dim, self.c * 7 * 7, bias=False),
                                nn.BatchNorm1d(self.c * 7 * 7), nn.ReLU(inplace=True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(self.c, 4 * ngf, 4, 2, 1, bias=False),  # [B, 4ngf, 14, 14]
            nn.BatchNorm2d(4 * ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(4 * ngf, out_channels, 4, 2, 1),  # [B, C, 28, 28]
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], self.c, 7, 7))


class BEGANDiscriminator(nn.Module):
    """Autoencoder D: ``D(x)`` is the per-sample L1 reconstruction error ``[B]``.

    ``features(x)`` is the ``[B, h_dim]`` bottleneck code; ``reconstruct(x)`` the image.
    """

    def __init__(self, h_dim: int = 32, ndf: int = 16, sn: Wrap | None = None,
                 channels: int = 1):
        super().__init__()
        sn = sn or _identity
        self.c = 4 * ndf
        self.encoder = nn.Sequential(
            sn(nn.Conv2d(channels, self.c, 4, 2, 1)), nn.ReLU(inplace=True),  # [B, 4ndf, 14, 14]
            nn.Flatten(), sn(nn.Linear(self.c * 14 * 14, h_dim, bias=False)),  # [B, h_dim]
        )
        self.decoder_fc = nn.Sequential(sn(nn.Linear(h_dim, self.c * 14 * 14, bias=False)),
                                        nn.BatchNorm1d(self.c * 14 * 14), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(sn(nn.ConvTranspose2d(self.c, channels, 4, 2, 1)),
                                     nn.Tanh())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.decoder_fc(self.encoder(x))
        return self.decoder(h.view(x.shape[0], self.c, 14, 14))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.reconstruct(x) - x).abs().flatten(1).mean(1)  # L(x) = |x - AE(x)|, [B]
