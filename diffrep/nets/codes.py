"""Pieces that turn encoder features into codes: variational heads and time-dependent codes.

- VDRL (Mittal et al. 2023): the encoder outputs (mu, logvar); z = mu + exp(logvar / 2) n and
  KL(N(mu, var) || N(0, I)) = 0.5 sum(mu^2 + var - 1 - logvar) joins the loss.
- Time-dependent ("infinite-dimensional") code E(x0, t): encoder features h(x0) and a sinusoidal
  embedding of the model time t are mixed by a small MLP, so one network gives a code per t.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffrep.nets.layers import timestep_embedding


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample, summed over code dimensions."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def reparameterise(mean: Tensor, logvar: Tensor) -> Tensor:
    """z = mean + exp(logvar / 2) n: a sample whose gradient reaches the encoder."""
    return mean + (0.5 * logvar).exp() * torch.randn_like(mean)


class TimeCodeHead(nn.Module):
    """z(x0, t) = W2 SiLU(W1 h(x0) + W_t emb(t)): the code at model time t."""

    def __init__(self, feature_dim: int, code_dim: int, hidden: int = 256, time_dim: int = 64) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.features = nn.Linear(feature_dim, hidden)
        self.time = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, code_dim))

    def forward(self, h: Tensor, t: Tensor) -> Tensor:
        return self.out(self.features(h) + self.time(timestep_embedding(t, self.time_dim)))
