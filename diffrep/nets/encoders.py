"""Encoders E(x0) -> z.

``ConvEncoder`` is the official PDAE CelebA64 encoder, sized by image size: stride-2 3x3 convs
with GroupNorm + SiLU between them, one attention block at 16x16, then flatten and a linear
layer to the latent; no output normalisation. ``TimmEncoder`` wraps any timm backbone
(``pretrained=False``: nothing is downloaded) with a linear head.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from diffrep.errors import ConfigError
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


class PlainBlock(nn.Module):
    """A ResBlock without time conditioning as Diff-AE's encoder builds it: GN, SiLU, one 3x3
    conv (its out-layers exist only under a condition), plus the skip (1x1 conv if the width
    changes); ``down`` average-pools both paths before the conv."""

    def __init__(self, channels: int, out_channels: int, num_groups: int, down: bool = False) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(normalization(channels, num_groups), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.down = down
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        norm_act, conv = self.in_layers[:-1], self.in_layers[-1]
        h = norm_act(x)
        if self.down:
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        return self.skip_connection(x) + conv(h)


class HalfUNetEncoder(nn.Module):
    """Diff-AE's semantic encoder (phizaz/diffae ``BeatGANsEncoderModel`` with
    ``use_time_condition=False``): an input conv, ``num_res_blocks`` single-conv blocks per level
    with self-attention at the ``attention_resolutions`` (pixels; the official 16), a downsampling
    block between levels, a middle block (block, attention, block), then GN, SiLU, global average
    pooling and a 1x1 conv to the code."""

    def __init__(self, in_channels: int = 1, image_size: int = 32, latent_dim: int = 512, base_channels: int = 64,
                 channel_mult: tuple[int, ...] = (1, 2, 4, 8, 8), num_res_blocks: int = 2,
                 attention_resolutions: tuple[int, ...] = (16,), num_heads: int = 1, num_groups: int = 32) -> None:
        super().__init__()
        ch = base_channels * channel_mult[0]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 3, padding=1)]
        resolution = image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers.append(PlainBlock(ch, base_channels * mult, num_groups))
                ch = base_channels * mult
                if resolution in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_heads, -1, num_groups))
            if level != len(channel_mult) - 1:
                layers.append(PlainBlock(ch, ch, num_groups, down=True))
                resolution //= 2
        layers += [PlainBlock(ch, ch, num_groups), AttentionBlock(ch, num_heads, -1, num_groups),
                   PlainBlock(ch, ch, num_groups)]
        self.blocks = nn.Sequential(*layers)
        self.out = nn.Sequential(normalization(ch, num_groups), nn.SiLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Conv2d(ch, latent_dim, 1), nn.Flatten())
        self.latent_dim = latent_dim

    def forward(self, x0: Tensor) -> Tensor:
        return self.out(self.blocks(x0))


class FlattenEncoder(nn.Module):
    """z = x0 flattened: a perfect-information code (tests, and an upper bound for a decoder)."""

    def __init__(self, in_channels: int, image_size: int, latent_dim: int) -> None:
        super().__init__()
        if latent_dim != in_channels * image_size * image_size:
            raise ConfigError(f"the flatten encoder's latent_dim must be C*H*W = {in_channels * image_size**2}")
        self.latent_dim = latent_dim

    def forward(self, x0: Tensor) -> Tensor:
        return x0.flatten(1)


#: the names of DRL's time-conditioned WRN (which reads the noise level) among the built-in encoders
WRN_KINDS = ("wrn", "wrn28_2")


def takes_noise_level(kind: str | dict) -> bool:
    """Whether the encoder ``kind`` names reads the noise level, E(x0, log sigma): its class says so with
    ``takes_noise_level = True`` (DRL's time-conditioned WRN; a user's class may too)."""
    from diffrep import plugins

    if isinstance(kind, dict) and "kind" in kind:
        kind = kind["kind"]
    if plugins.is_plugin(kind):
        cls = plugins.import_class(plugins.class_path_of(kind, "encoder"), nn.Module, "encoder")
        return bool(getattr(cls, "takes_noise_level", False))
    return kind in WRN_KINDS


def build_encoder(kind: str | dict, in_channels: int, image_size: int, latent_dim: int, **kwargs) -> nn.Module:
    """'conv' (official PDAE encoder), 'halfunet' (Diff-AE), 'wrn28_2' (DRL's time-conditioned
    WRN-28-2) or 'wrn' (any depth/widen_factor), 'flatten', 'timm:<model name>' — each as its name or as
    ``{kind: NAME, <its settings>}`` (e.g. ``{kind: conv, channels: [32, 64]}``) — or the user's own
    ``nn.Module``: ``{class_path: package.module.Class, init_args: {...}}`` (or the class path alone,
    with ``kwargs`` as its arguments). Its ``__init__`` is offered ``in_channels``, ``image_size`` and
    ``latent_dim`` (those it declares); its ``forward(x)`` maps images (B, C, H, W) in [-1, 1] to codes
    (B, latent_dim)."""
    from diffrep import plugins

    if isinstance(kind, dict) and "kind" in kind:  # {kind: NAME, <its settings>}
        kwargs = {**{k: v for k, v in kind.items() if k != "kind"}, **kwargs}
        kind = kind["kind"]
    if plugins.is_plugin(kind):
        spec = kind if isinstance(kind, dict) else {"class_path": kind, "init_args": kwargs}
        return plugins.build(spec, nn.Module, "encoder",
                             {"in_channels": in_channels, "image_size": image_size, "latent_dim": latent_dim})
    if kind in WRN_KINDS:
        from diffrep.nets.wrn import TimeWideResNet

        if kind == "wrn28_2":
            kwargs = {"depth": 28, "widen_factor": 2, **kwargs}
        return TimeWideResNet(in_channels, out_dim=latent_dim, **kwargs)
    if kind == "conv":
        return ConvEncoder(in_channels, image_size, latent_dim, **kwargs)
    if kind == "halfunet":
        return HalfUNetEncoder(in_channels, image_size, latent_dim, **kwargs)
    if kind == "flatten":
        return FlattenEncoder(in_channels, image_size, latent_dim)
    if kind.startswith("timm:"):
        return TimmEncoder(kind.split(":", 1)[1], in_channels, latent_dim, **kwargs)
    raise ConfigError(
        f"unknown encoder {kind!r}; use 'conv', 'halfunet', 'wrn28_2', 'wrn', 'flatten', 'timm:<model name>' "
        "(e.g. 'timm:resnet18') or your own: {class_path: package.module.Class, init_args: {...}}"
    )
