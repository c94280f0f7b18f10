"""A user's own classes, as a researcher would write them outside diffrep (the README's example)."""

from torch import nn


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
