"""Decoders z -> image for the autoencoder baselines: the mirror image of ``ConvEncoder``."""

from __future__ import annotations

import math

from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.nets.layers import normalization


class ConvDecoder(nn.Module):
    """A linear layer to a 4x4 feature map, then nearest-neighbour x2 upsampling + 3x3 conv
    stages (GroupNorm, SiLU) up to the image size, and a 3x3 conv to the image channels."""

    def __init__(self, out_channels: int = 1, image_size: int = 32, latent_dim: int = 32,
                 channels: tuple[int, ...] = (128, 64, 32), num_groups: int = 8) -> None:
        super().__init__()
        stages = int(math.log2(image_size // 4))
        if 4 * 2**stages != image_size:
            raise ConfigError(f"ConvDecoder needs an image size of 4 * 2^k, got {image_size}")
        widths = [channels[min(i, len(channels) - 1)] for i in range(stages + 1)]
        self.start = nn.Linear(latent_dim, widths[0] * 16)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                normalization(c_in, num_groups),
                nn.SiLU(),
                nn.Upsample(scale_factor=2),
                nn.Conv2d(c_in, c_out, 3, padding=1),
            ]
        layers += [normalization(widths[-1], num_groups), nn.SiLU(), nn.Conv2d(widths[-1], out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        self.width = widths[0]

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.start(z).view(len(z), self.width, 4, 4))
