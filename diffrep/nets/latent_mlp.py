"""The noise predictor for flat codes: the MLP with skip connections of the latent DPMs of
Diff-AE (Preechakul et al. 2022) and PDAE (Lin et al. 2022), as in their official code
(ckczzj/PDAE ``model/mlp_skip_net.py``, phizaz/diffae ``model/latentnet.py``).

- The time t goes through a sinusoidal embedding of ``time_dim``, then Linear(time_dim, d),
  SiLU, Linear(d, d): an embedding as wide as the code d.
- Layer 0 maps d -> hidden; layers 1..L-2 see the noisy code again, concatenated to their input
  (hidden + d -> hidden); the last layer maps hidden + d -> d with no norm, condition or
  activation. Each hidden layer is h = SiLU(LayerNorm(Linear(x) * (1 + Linear(SiLU(emb))))):
  the time scale is applied before the norm.
- Hidden layers (and their time layers) get Kaiming-normal weights; the output layer keeps
  PyTorch's default initialisation.
State-dict keys follow the official module (``time_embed``, ``layers.i.linear``,
``layers.i.linear_emb``/``cond_layers``, ``layers.i.norm``), so an official latent DPM loads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.nets.layers import timestep_embedding


class LatentLayer(nn.Module):
    """Linear, then (for hidden layers) the time scale, LayerNorm, SiLU and dropout."""

    def __init__(self, in_features: int, out_features: int, cond_features: int, hidden: bool,
                 use_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.linear = nn.Linear(in_features, out_features)
        self.act = nn.SiLU() if hidden else nn.Identity()
        if hidden:
            self.linear_emb = nn.Linear(cond_features, out_features)
            self.cond_layers = nn.Sequential(self.act, self.linear_emb)
            for layer in (self.linear, self.linear_emb):
                nn.init.kaiming_normal_(layer.weight, a=0, nonlinearity="relu")
        self.norm = nn.LayerNorm(out_features) if hidden and use_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if hidden and dropout > 0 else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.linear(x)
        if self.hidden:
            h = h * (1.0 + self.cond_layers(emb))
        return self.dropout(self.act(self.norm(h)))


class LatentMLP(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 2048, num_layers: int = 10, time_dim: int = 64,
                 use_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if num_layers < 2:
            raise ConfigError(f"LatentMLP needs at least 2 layers, got {num_layers}")
        self.latent_dim, self.time_dim = latent_dim, time_dim
        self.time_embed = nn.Sequential(nn.Linear(time_dim, latent_dim), nn.SiLU(), nn.Linear(latent_dim, latent_dim))
        widths = [latent_dim] + [hidden] * (num_layers - 1) + [latent_dim]
        self.layers = nn.ModuleList(
            LatentLayer(widths[i] + (latent_dim if i else 0), widths[i + 1], latent_dim, hidden=i < num_layers - 1,
                        use_norm=use_norm, dropout=dropout)
            for i in range(num_layers)
        )

    def forward(self, z_t: Tensor, t: Tensor) -> Tensor:
        emb = self.time_embed(timestep_embedding(t, self.time_dim))
        h = z_t
        for i, layer in enumerate(self.layers):
            h = layer(h if i == 0 else torch.cat([h, z_t], dim=1), emb)
        return h
