"""Encoders E(x0) -> z.

``ConvEncoder`` is the official PDAE CelebA64 encoder, sized by image size: stride-2 3x3 convs
with GroupNorm + SiLU between them, one attention block at 16x16, then flatten and a linear
layer to the latent; no output normalisation. ``TimmEncoder`` wraps any timm backbone
(``pretrained=False``: nothing is downloaded) with a linear head.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from diffrep.nets.layers import AttentionBlock, normalization


class ConvEncoder(nn.Module):
    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 32,
        latent_dim: int = 32,
        channels: tuple[int, ...] = (64, 128, 128, 128),
        attention_resolution: int = 16,
        num_heads: int = 4,
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        stages = min(len(channels), int(math.log2(image_size // 4)) if image_size >= 8 else 1)
        layers: list[nn.Module] = []
        c_in, size = in_channels, image_size
        for i, c_out in enumerate(channels[:stages]):
            if i:
                layers += [normalization(c_in, num_groups), nn.SiLU()]
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1))
            c_in, size = c_out, size // 2
            if size == attention_resolution:
                layers.append(AttentionBlock(c_out, num_heads, -1, num_groups))
        layers += [normalization(c_in, num_groups), nn.SiLU(), nn.Flatten(), nn.Linear(c_in * size * size, latent_dim)]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, x0: Tensor) -> Tensor:
        return self.net(x0)


class TimmEncoder(nn.Module):
    """Any timm model as a feature extractor plus a linear head to the latent."""

    def __init__(self, name: str = "resnet18", in_channels: int = 1, latent_dim: int = 32, **timm_kwargs) -> None:
        super().__init__()
        import timm

        self.backbone = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_channels, **timm_kwargs)
        self.head = nn.Linear(self.backbone.num_features, latent_dim)
        self.latent_dim = latent_dim

    def forward(self, x0: Tensor) -> Tensor:
        return self.head(self.backbone(x0))


def build_encoder(kind: str, in_channels: int, image_size: int, latent_dim: int, **kwargs) -> nn.Module:
    """'conv' for the official PDAE encoder, 'timm:<model name>' for a timm backbone."""
    if kind == "conv":
        return ConvEncoder(in_channels, image_size, latent_dim, **kwargs)
    if kind.startswith("timm:"):
        return TimmEncoder(kind.split(":", 1)[1], in_channels, latent_dim, **kwargs)
    raise ValueError(f"unknown encoder {kind!r}; use 'conv' or 'timm:<model name>' (e.g. 'timm:resnet18')")
