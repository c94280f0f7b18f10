"""Building blocks of the guided-diffusion U-Net, named as in PDAE/Diff-AE so weights load as-is.

A ResBlock is conditioned on the time embedding through AdaGN, GN(h)(1 + t_scale) + t_shift,
and optionally on a code embedding:
  - ``z_mode="scale"``       (Diff-AE, Preechakul et al. 2022): h * (1 + z_scale)
  - ``z_mode="scale_shift"`` (PDAE shift blocks, Lin et al. 2022): h * (1 + z_scale) + z_shift
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from diffrep.errors import ConfigError


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer so a residual branch starts as the identity (guided-diffusion's trick)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def normalization(channels: int, num_groups: int = 32) -> nn.GroupNorm:
    if channels % num_groups:
        raise ConfigError(f"{channels} channels cannot be split into {num_groups} GroupNorm groups")
    return nn.GroupNorm(num_groups, channels)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) times, cos half first as in guided-diffusion."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """Residual block with AdaGN on time (and optionally z), optional up/down sampling."""

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float = 0.0,
        out_channels: int | None = None,
        up: bool = False,
        down: bool = False,
        num_groups: int = 32,
        z_mode: str | None = None,
        z_channels: int | None = None,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        z_channels = z_channels or emb_channels  # the code embedding's width (Diff-AE: the code itself)
        self.up, self.down = up, down
        self.in_layers = nn.Sequential(
            normalization(channels, num_groups), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels))
        self.z_mode = z_mode
        if z_mode == "scale":
            self.cond_emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(z_channels, out_channels))
        elif z_mode == "scale_shift":
            self.emb_z_layers = nn.Sequential(nn.SiLU(), nn.Linear(z_channels, 2 * out_channels))
        elif z_mode == "add":  # NCSN++ (DRL): the code's part of the embedding is a bias after the first conv
            self.z_bias_layers = nn.Sequential(nn.SiLU(), nn.Linear(z_channels, out_channels))
        elif z_mode is not None:
            raise ConfigError(f"unknown z_mode {z_mode!r}; choose None, 'scale', 'scale_shift' or 'add'")
        self.out_layers = nn.Sequential(
            normalization(out_channels, num_groups),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def _resample(self, x: Tensor) -> Tensor:
        if self.up:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.down:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x: Tensor, emb: Tensor, z_emb: Tensor | None = None) -> Tensor:
        norm_act, conv = self.in_layers[:-1], self.in_layers[-1]
        h = conv(self._resample(norm_act(x)))
        x = self._resample(x)
        if self.z_mode == "add":
            if z_emb is None:
                raise ValueError("this ResBlock is conditioned on z; pass z_emb")
            h = h + self.z_bias_layers(z_emb)[..., None, None]
        scale, shift = self.emb_layers(emb)[..., None, None].chunk(2, dim=1)
        out_norm, out_rest = self.out_layers[0], self.out_layers[1:]
        h = out_norm(h) * (1 + scale) + shift
        if self.z_mode in ("scale", "scale_shift"):
            if z_emb is None:
                raise ValueError("this ResBlock is conditioned on z; pass z_emb")
            if self.z_mode == "scale":
                h = h * (1 + self.cond_emb_layers(z_emb)[..., None, None])
            else:
                z_scale, z_shift = self.emb_z_layers(z_emb)[..., None, None].chunk(2, dim=1)
                h = h * (1 + z_scale) + z_shift
        return self.skip_connection(x) + out_rest(h)


class AttentionBlock(nn.Module):
    """Self-attention over pixels.

    ``new_order=False`` splits the qkv channels into heads first, then q/k/v (guided-diffusion's
    "legacy" order, PDAE's default); ``True`` splits q/k/v first. Both agree for one head.
    """

    def __init__(
        self, channels: int, num_heads: int = 1, head_channels: int = -1, num_groups: int = 32, new_order: bool = False
    ) -> None:
        super().__init__()
        self.num_heads = num_heads if head_channels == -1 else channels // head_channels
        self.new_order = new_order
        self.norm = normalization(channels, num_groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, hgt, wid = x.shape
        flat = rearrange(x, "b c h w -> b c (h w)")
        qkv = self.qkv(self.norm(flat))  # (B, 3C, L)
        layout = "b (three h d) l" if self.new_order else "b (h three d) l"  # q/k/v first, or heads first
        # (B, heads, L, d), each contiguous: the shape and layout for which the CPU runs its fused (flash)
        # kernel; strided 3-D views fall back to the unfused math (docs/speed.md times the two)
        q, k, v = rearrange(qkv, f"{layout} -> three b h l d", three=3, h=self.num_heads).contiguous()
        attended = rearrange(F.scaled_dot_product_attention(q, k, v), "b h l d -> b (h d) l")
        return rearrange(flat + self.proj_out(attended), "b c (h w) -> b c h w", h=hgt, w=wid)


class TimestepSequential(nn.Sequential):
    """A Sequential whose ResBlocks receive the time (and code) embeddings."""

    def forward(self, x: Tensor, emb: Tensor, z_emb: Tensor | None = None) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb, z_emb) if isinstance(layer, ResBlock) else layer(x)
        return x
