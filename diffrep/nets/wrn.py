"""DRL's time-dependent encoder E(x0, t): a Wide ResNet whose every block sees the noise level.

As the official code builds it (Mittal et al. ICML 2023; korabs-x/representation_score_based,
``models/wrn.py`` and ``models/timeembedding.py``): WRN-depth-k (BatchNorm, pre-activation
blocks, dropout 0), stages of 16k / 32k / 64k channels. A Gaussian-Fourier embedding of
log sigma(t) (16 frequencies at scale 16, fixed) -> Linear(32, 64) -> SiLU -> Linear(64, 64) is
the time embedding; in every block SiLU(temb) -> Linear(64, planes) is added as a per-channel bias
after the first conv. Global average pooling gives the 64k-d code (128-d for WRN-28-2); a
variational code adds Linear(64k, 2 * latent) for (mean, log-variance). Linear layers use the
DDPM initialisation (Glorot-uniform weights, zero biases).

``param_t``: a learnable scalar; ``forward(x0, None)`` encodes at sigma(sigmoid(param_t)), the
learned noise level the official downstream fine-tuning (LaplaceNet) uses. The output width is
64k, or ``out_dim`` through a linear head when that differs (the VDRL head; any other width is
our extension, the official code asserts latent = 64k).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffrep.errors import ConfigError


def _ddpm_linear(fan_in: int, fan_out: int) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    nn.init.xavier_uniform_(layer.weight)  # variance_scaling(1, 'fan_avg', 'uniform')
    nn.init.zeros_(layer.bias)
    return layer


class NoiseLevelEmbedding(nn.Module):
    """Fourier features of log sigma -> Linear -> SiLU -> Linear (official ``TimeEmbedding``)."""

    def __init__(self, frequencies: int = 16, scale: float = 16.0, dim: int = 64) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.randn(frequencies) * scale)  # fixed, as the official W
        self.net = nn.Sequential(_ddpm_linear(2 * frequencies, dim), nn.SiLU(), _ddpm_linear(dim, dim))
        self.dim = dim

    def forward(self, log_sigma: Tensor) -> Tensor:
        angles = log_sigma.float()[:, None] * self.frequencies[None] * 2 * math.pi
        return self.net(torch.cat([angles.sin(), angles.cos()], dim=1))


class WideBlock(nn.Module):
    """BN-ReLU-conv, + time bias, BN-ReLU-conv (stride), + shortcut (official ``wide_basic``)."""

    def __init__(self, in_planes: int, planes: int, stride: int, temb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride=stride) if stride != 1 or in_planes != planes
                         else nn.Identity())
        self.time_bias = _ddpm_linear(temb_dim, planes)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x))) + self.time_bias(F.silu(temb))[:, :, None, None]
        out = self.conv2(F.relu(self.bn2(self.dropout(out))))
        return out + self.shortcut(x)


class TimeWideResNet(nn.Module):
    """E(x0, log sigma) -> code (module docstring). ``takes_noise_level`` tells DRL to pass it."""

    takes_noise_level = True

    def __init__(self, in_channels: int = 3, depth: int = 28, widen_factor: int = 2, out_dim: int | None = None,
                 dropout: float = 0.0, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ConfigError(f"a Wide ResNet's depth is 6n + 4 (10, 16, 22, 28, ...), got {depth}")
        n = (depth - 4) // 6
        stages = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.time_embedding = NoiseLevelEmbedding()
        self.param_t = nn.Parameter(torch.tensor(0.0))
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.conv1 = nn.Conv2d(in_channels, stages[0], 3, padding=1)
        blocks, in_planes = [], stages[0]
        for planes, stride in zip(stages[1:], (1, 2, 2), strict=True):
            for i in range(n):
                blocks.append(WideBlock(in_planes, planes, stride if i == 0 else 1, self.time_embedding.dim, dropout))
                in_planes = planes
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(stages[3], momentum=0.9)  # as the official code sets it
        self.feature_dim = stages[3]
        self.head = _ddpm_linear(stages[3], out_dim) if out_dim and out_dim != stages[3] else nn.Identity()
        self.out_dim = out_dim or stages[3]

    def learned_log_sigma(self, n: int) -> Tensor:
        t = torch.sigmoid(self.param_t).expand(n)
        return math.log(self.sigma_min) + t * math.log(self.sigma_max / self.sigma_min)

    def forward(self, x0: Tensor, log_sigma: Tensor | None = None) -> Tensor:
        if log_sigma is None:
            log_sigma = self.learned_log_sigma(x0.shape[0])
        temb = self.time_embedding(log_sigma.to(x0.device))
        h = self.conv1(x0)
        for block in self.blocks:
            h = block(h, temb)
        h = F.relu(self.bn(h)).mean(dim=(2, 3))
        return self.head(h)
