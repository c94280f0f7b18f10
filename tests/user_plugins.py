"""A user's own classes, as a researcher would write them outside diffrep (the README's example)."""

from dataclasses import dataclass

import torch
from torch import nn

from diffrep.diffusion.objective import DenoisingObjective


class TinyEncoder(nn.Module):
    """Images (B, C, H, W) -> codes (B, latent_dim); diffrep offers in_channels and latent_dim."""

    def __init__(self, in_channels: int, latent_dim: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, latent_dim),
        )

    def forward(self, x):
        return self.net(x)


class NotAModule:
    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim


class TinyDenoiser(nn.Module):
    """A denoiser: net(x, t, z) -> eps, x the noised image and t the model time; diffrep offers z_dim (the
    code's width; none for a DPM's, which is called as net(x, t)) and reads in_channels and image_size
    from its init_args."""

    output = "eps"

    def __init__(self, in_channels: int, image_size: int, z_dim: int = 0, width: int = 16) -> None:
        super().__init__()
        self.image_size, self.z_dim = image_size, z_dim
        self.inp = nn.Conv2d(in_channels, width, 3, padding=1)
        self.condition = nn.Linear(z_dim + 1, width)
        self.out = nn.Conv2d(width, in_channels, 3, padding=1)

    def forward(self, x, t, z=None):  # z None: an unconditional DPM's network
        z = x.new_zeros(len(x), self.z_dim) if z is None else z
        scale = self.condition(torch.cat([z, t.float()[:, None] / 1000], dim=1))[:, :, None, None]
        return self.out(nn.functional.silu(self.inp(x) * (1 + scale)))


@dataclass(frozen=True)
class ScaledObjective(DenoisingObjective):
    """A loss of one's own: diffrep's objective with its loss times ``scale``."""

    scale: float = 2.0

    def __call__(self, schedule, x0, predict_eps, t=None):
        loss, per_sample = super().__call__(schedule, x0, predict_eps, t)
        return self.scale * loss, per_sample
