"""A noise predictor for flat codes: Diff-AE's MLP with skip connections (Preechakul et al. 2022).

Every hidden layer sees the noisy code again (concatenated to its input), which is what lets a
deep MLP denoise codes without losing them; time enters each layer as a (1 + scale) modulation
after LayerNorm. The output layer is zero-initialised so training starts from eps_hat = 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffrep.nets.layers import timestep_embedding, zero_module


class LatentMLP(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 512, num_layers: int = 10, time_dim: int = 64) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"LatentMLP needs at least 2 layers, got {num_layers}")
        self.latent_dim, self.time_dim = latent_dim, time_dim
        self.time_embed = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.layers = nn.ModuleList(
            nn.Linear((latent_dim if i == 0 else hidden + latent_dim), hidden) for i in range(num_layers - 1)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_layers - 1))
        self.time_scales = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_layers - 1))
        self.out = zero_module(nn.Linear(hidden + latent_dim, latent_dim))

    def forward(self, z_t: Tensor, t: Tensor) -> Tensor:
        emb = self.time_embed(timestep_embedding(t, self.time_dim))
        h = z_t
        for i, (layer, norm, scale) in enumerate(zip(self.layers, self.norms, self.time_scales, strict=True)):
            h = layer(h if i == 0 else torch.cat([h, z_t], dim=1))
            h = nn.functional.silu(norm(h) * (1 + scale(emb)))
        return self.out(torch.cat([h, z_t], dim=1))
