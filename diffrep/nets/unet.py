"""The guided-diffusion U-Net used by PDAE and Diff-AE, with optional AdaGN conditioning on z.

State-dict keys and shapes match the official PDAE ``model/unet.py`` (time_embed, input_blocks,
middle_block, output_blocks, out; in_layers/emb_layers/out_layers; norm/qkv/proj_out), so an
official checkpoint's ``ema_denoise_fn`` loads without renaming. The middle block always holds an
attention block, as in the official code; ``attention_resolutions`` adds more at those
downsampling rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.nets.layers import (
    AttentionBlock,
    ResBlock,
    TimestepSequential,
    normalization,
    timestep_embedding,
    zero_module,
)

Z_MODES = ("scale", "scale_shift", "ncsnpp")


@dataclass
class UNetConfig:
    """Architecture of a U-Net; saved with every checkpoint so loading can check it."""

    in_channels: int = 1
    base_channels: int = 64
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2, 4])
    num_res_blocks: int = 2
    attention_resolutions: list[int] = field(default_factory=list)
    num_heads: int = 1
    head_channels: int = -1
    dropout: float = 0.0
    num_groups: int = 32
    image_size: int = 32
    new_attention_order: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels

    def check_image(self, channels: int, size: int) -> None:
        """Refuse images the network cannot take, naming what would fit."""
        factor = 2 ** (len(self.channel_mult) - 1)
        if channels != self.in_channels:
            raise ValueError(f"images have {channels} channels but the U-Net takes {self.in_channels}")
        if size % factor:
            raise ValueError(
                f"image size {size} is not divisible by {factor} (U-Net with {len(self.channel_mult)} levels)"
            )


def build_decoder(
    cfg: UNetConfig, skip_channels: list[int], ch: int, z_mode: str | None, extra_bottleneck_channels: int = 0
) -> tuple[TimestepSequential, nn.ModuleList, nn.Sequential]:
    """Middle block, output blocks and output head; shared by the U-Net and PDAE's shift decoder.
    ``extra_bottleneck_channels``: channels joined to the bottleneck features before the middle
    block (NCSN++'s code map), taken back to ``ch`` by its first ResBlock."""
    emb, groups = cfg.time_embed_dim, cfg.num_groups

    def res(cin: int, cout: int | None = None, up: bool = False) -> ResBlock:
        return ResBlock(cin, emb, cfg.dropout, cout, up=up, num_groups=groups, z_mode=z_mode)

    def attn(c: int) -> AttentionBlock:
        return AttentionBlock(c, cfg.num_heads, cfg.head_channels, groups, cfg.new_attention_order)

    middle = TimestepSequential(res(ch + extra_bottleneck_channels, ch), attn(ch), res(ch))
    skips = list(skip_channels)
    ds = 2 ** (len(cfg.channel_mult) - 1)
    blocks = nn.ModuleList()
    for level, mult in reversed(list(enumerate(cfg.channel_mult))):
        for i in range(cfg.num_res_blocks + 1):
            layers: list[nn.Module] = [res(ch + skips.pop(), cfg.base_channels * mult)]
            ch = cfg.base_channels * mult
            if ds in cfg.attention_resolutions:
                layers.append(attn(ch))
            if level and i == cfg.num_res_blocks:
                layers.append(res(ch, ch, up=True))
                ds //= 2
            blocks.append(TimestepSequential(*layers))
    head = nn.Sequential(
        normalization(ch, groups), nn.SiLU(), zero_module(nn.Conv2d(ch, cfg.in_channels, 3, padding=1))
    )
    return middle, blocks, head


class UNet(nn.Module):
    """eps_theta(x_t, t[, z]): predicts the noise of x_t at (model) time t.

    With ``z_dim`` set, ``label_emb`` maps z to the time-embedding width and every ResBlock is
    modulated by it (``z_mode``: Diff-AE's 'scale' or PDAE's 'scale_shift'), or z enters as the
    official DRL NCSN++ takes it (``z_mode: ncsnpp``): label_emb(z) joins the time embedding, which
    makes it a per-channel bias after the first conv of every ResBlock, and an MLP of
    [time embedding, label_emb(z)] (-> 2 base x r -> 2 base x r -> 2 base x r x r, SiLU after each)
    gives a (2 base, r, r) map joined to the bottleneck features (r: the bottleneck resolution)
    before the middle block. NCSN++ widens its whole middle block by those channels; here the middle
    block's first ResBlock takes them back to the bottleneck width (a named simplification).
    """

    def __init__(self, config: UNetConfig | None = None, z_dim: int | None = None, z_mode: str = "scale") -> None:
        super().__init__()
        self.config = cfg = config or UNetConfig()
        cfg.check_image(cfg.in_channels, cfg.image_size)
        if z_mode not in Z_MODES:
            raise ConfigError(f"unknown z_mode {z_mode!r}; choose one of {list(Z_MODES)}")
        cond = ("add" if z_mode == "ncsnpp" else z_mode) if z_dim else None
        in_channels, base_channels, channel_mult = cfg.in_channels, cfg.base_channels, cfg.channel_mult
        num_res_blocks, dropout, num_groups = cfg.num_res_blocks, cfg.dropout, cfg.num_groups
        num_heads, head_channels, attention_resolutions = cfg.num_heads, cfg.head_channels, cfg.attention_resolutions
        emb = cfg.time_embed_dim
        self.time_embed = nn.Sequential(nn.Linear(base_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.z_dim = z_dim
        if z_dim:
            self.label_emb = nn.Linear(z_dim, emb)

        ch = base_channels * channel_mult[0]
        self.input_blocks = nn.ModuleList([TimestepSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_channels = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [
                    ResBlock(ch, emb, dropout, base_channels * mult, num_groups=num_groups, z_mode=cond)
                ]
                ch = base_channels * mult
                if ds in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_heads, head_channels, num_groups, cfg.new_attention_order))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(
                    TimestepSequential(ResBlock(ch, emb, dropout, ch, down=True, num_groups=num_groups, z_mode=cond))
                )
                skip_channels.append(ch)
                ds *= 2
        self.skip_channels = list(skip_channels)
        self.bottleneck_channels = ch
        self.code_map: nn.Sequential | None = None
        extra = 0
        if z_dim and z_mode == "ncsnpp":
            r, extra = cfg.image_size // ds, 2 * base_channels
            self.code_map = nn.Sequential(
                nn.Linear(2 * emb, extra * r), nn.SiLU(), nn.Linear(extra * r, extra * r), nn.SiLU(),
                nn.Linear(extra * r, extra * r * r), nn.SiLU(), nn.Unflatten(1, (extra, r, r)),
            )
        self.middle_block, self.output_blocks, self.out = build_decoder(cfg, skip_channels, ch, cond, extra)

    def embed_time(self, t: Tensor) -> Tensor:
        return self.time_embed(timestep_embedding(t, self.config.base_channels))

    def embed_z(self, z: Tensor | None) -> Tensor | None:
        if not self.z_dim:
            return None
        if z is None:
            raise ValueError("this U-Net is conditioned on a code; pass z")
        return self.label_emb(z)

    def encode_half(self, x: Tensor, emb: Tensor, z_emb: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Run the input blocks; return the bottleneck features and every skip feature."""
        hs = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, z_emb)
            hs.append(h)
        return h, hs

    def decode_half(self, h: Tensor, hs: list[Tensor], emb: Tensor, z_emb: Tensor | None = None) -> Tensor:
        """Middle block, output blocks with skips (consumed from the end), output head."""
        if self.code_map is not None:
            h = torch.cat([h, self.code_map(torch.cat([emb, z_emb], dim=1)).to(h.dtype)], dim=1)
        h = self.middle_block(h, emb, z_emb)
        for block, skip in zip(self.output_blocks, reversed(hs), strict=True):
            h = block(torch.cat([h, skip], dim=1), emb, z_emb)
        return self.out(h)

    def forward(self, x: Tensor, t: Tensor, z: Tensor | None = None) -> Tensor:
        emb = self.embed_time(t)
        z_emb = self.embed_z(z)
        h, hs = self.encode_half(x, emb, z_emb)
        return self.decode_half(h, hs, emb, z_emb)
