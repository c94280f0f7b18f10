"""Diff-AE's conditional denoiser as the official code builds it (phizaz/diffae
``model/unet_autoenc.py`` ``BeatGANsAutoencModel`` with ``resnet_two_cond``, its encoder left to
``diffrep.nets.encoders.HalfUNetEncoder``).

What differs from diffrep's guided-diffusion ``UNet`` with ``z_mode: scale``, each as the official:
- the time embedding has its own width (``embed_channels``, 512), not 4 x base channels, and sits
  under ``time_embed.time_embed`` (``TimeStyleSeperateEmbed``);
- the code enters every ResBlock as it is (the style is the identity): ``cond_emb_layers``
  (SiLU, Linear(code -> channels)) scales GN(h)(1 + t_s) + t_b by (1 + s(z)), in the encoder half,
  the middle and the decoder half alike;
- attention at the listed *resolutions* in pixels (the official 16), and in the middle block;
- down- and upsampling by ResBlocks (``resblock_updown``), GroupNorm of min(32, channels) groups,
  dropout 0.1 by default, zero-initialised output convolutions.
Module names are the official ones, so an official state dict (less ``encoder.``) loads as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from diffrep.nets.layers import AttentionBlock, ResBlock, TimestepSequential, timestep_embedding, zero_module
from diffrep.nets.unet import UNetConfig


@dataclass
class BeatGANsConfig(UNetConfig):
    """Diff-AE's denoiser settings (official defaults). ``attention_resolutions`` are in pixels
    here (the official meaning), not the downsampling factors of ``UNetConfig``."""

    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    attention_resolutions: list[int] = field(default_factory=lambda: [16])
    dropout: float = 0.1
    image_size: int = 64
    in_channels: int = 3
    embed_channels: int = 512

    def groups(self, channels: int) -> int:
        return min(self.num_groups, channels)


class TimeEmbed(nn.Module):
    """The official ``TimeStyleSeperateEmbed``'s time half (its style half is the identity)."""

    def __init__(self, time_channels: int, out_channels: int) -> None:
        super().__init__()
        self.time_embed = nn.Sequential(nn.Linear(time_channels, out_channels), nn.SiLU(),
                                        nn.Linear(out_channels, out_channels))

    def forward(self, t_emb: Tensor) -> Tensor:
        return self.time_embed(t_emb)


class BeatGANsAutoencUNet(nn.Module):
    """eps(x_t, t, z) of Diff-AE; ``z`` is the semantic code (``z_dim`` wide)."""

    def __init__(self, config: BeatGANsConfig | None = None, z_dim: int = 512) -> None:
        super().__init__()
        self.config = cfg = config or BeatGANsConfig()
        cfg.check_image(cfg.in_channels, cfg.image_size)
        self.z_dim = z_dim
        emb, base = cfg.embed_channels, cfg.base_channels
        self.time_embed = TimeEmbed(base, emb)

        def block(cin: int, cout: int, up: bool = False, down: bool = False) -> ResBlock:
            return ResBlock(cin, emb, cfg.dropout, cout, up=up, down=down, num_groups=cfg.groups(min(cin, cout)),
                            z_mode="scale", z_channels=z_dim)

        def attention(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, cfg.num_heads, cfg.head_channels, cfg.groups(ch), cfg.new_attention_order)

        ch = input_ch = base * cfg.channel_mult[0]
        self.input_blocks = nn.ModuleList([TimestepSequential(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skips: list[list[int]] = [[] for _ in cfg.channel_mult]
        skips[0].append(ch)
        self.input_levels = [0 for _ in cfg.channel_mult]
        self.input_levels[0] = 1
        resolution = cfg.image_size
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [block(ch, base * mult)]
                ch = base * mult
                if resolution in cfg.attention_resolutions:
                    layers.append(attention(ch))
                self.input_blocks.append(TimestepSequential(*layers))
                skips[level].append(ch)
                self.input_levels[level] += 1
            if level != len(cfg.channel_mult) - 1:
                resolution //= 2
                self.input_blocks.append(TimestepSequential(block(ch, ch, down=True)))
                skips[level + 1].append(ch)
                self.input_levels[level + 1] += 1
        self.middle_block = TimestepSequential(block(ch, ch), attention(ch), block(ch, ch))
        self.output_blocks = nn.ModuleList()
        self.output_levels = [0 for _ in cfg.channel_mult]
        self.lateral: list[bool] = []
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                skip = skips[level].pop() if skips[level] else 0
                layers = [block(ch + skip, base * mult)]
                ch = base * mult
                if resolution in cfg.attention_resolutions:
                    layers.append(attention(ch))
                if level and i == cfg.num_res_blocks:
                    resolution *= 2
                    layers.append(block(ch, ch, up=True))
                self.output_blocks.append(TimestepSequential(*layers))
                self.output_levels[level] += 1
                self.lateral.append(skip > 0)
        self.out = nn.Sequential(nn.GroupNorm(cfg.groups(ch), ch), nn.SiLU(),
                                 zero_module(nn.Conv2d(input_ch, cfg.in_channels, 3, padding=1)))

    def forward(self, x: Tensor, t: Tensor, z: Tensor | None = None) -> Tensor:
        if z is None:
            raise ValueError("Diff-AE's denoiser is conditioned on a code; pass z")
        emb = self.time_embed(timestep_embedding(t, self.config.base_channels))
        hs: list[list[Tensor]] = [[] for _ in self.input_levels]
        h, k = x, 0
        for level, count in enumerate(self.input_levels):
            for _ in range(count):
                h = self.input_blocks[k](h, emb, z)
                hs[level].append(h)
                k += 1
        h = self.middle_block(h, emb, z)
        k = 0
        for i, count in enumerate(reversed(self.output_levels)):
            for _ in range(count):
                if self.lateral[k]:
                    h = torch.cat([h, hs[-i - 1].pop()], dim=1)
                h = self.output_blocks[k](h, emb, z)
                k += 1
        return self.out(h)
