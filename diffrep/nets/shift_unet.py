"""PDAE's gradient estimator G_psi(x_t, z, t) on a frozen pre-trained U-Net (Lin et al. 2022, sec. 3.3).

The frozen encoder half runs once; its bottleneck and skip features feed both the frozen decoder
(giving eps_theta) and a new trainable shift decoder whose ResBlocks are modulated by time and
by z: h = (1 + z_scale)(GN(h)(1 + t_scale) + t_shift) + z_shift. ``shift_out`` is zero-initialised,
so G = 0 at step 0 and the model starts as the pre-trained DPM.

Attribute names follow the official ``ShiftUNet`` (time_embed, input_blocks, middle_block,
output_blocks, out for the frozen part; label_emb, shift_middle_block, shift_output_blocks,
shift_out for the new part), so an official PDAE decoder state dict loads as-is and the
frozen U-Net appears exactly once in a checkpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffrep.nets.unet import UNet, build_decoder


class ShiftUNet(nn.Module):
    def __init__(self, unet: UNet, latent_dim: int) -> None:
        super().__init__()
        cfg = unet.config
        self.config, self.latent_dim = cfg, latent_dim
        self._unet = [unet]  # methods only; its modules are registered below under official names
        self.time_embed, self.input_blocks = unet.time_embed, unet.input_blocks
        self.middle_block, self.output_blocks, self.out = unet.middle_block, unet.output_blocks, unet.out
        for frozen in (self.time_embed, self.input_blocks, self.middle_block, self.output_blocks, self.out):
            frozen.requires_grad_(False)
        self.label_emb = nn.Linear(latent_dim, cfg.time_embed_dim)
        self.shift_middle_block, self.shift_output_blocks, self.shift_out = build_decoder(
            cfg, unet.skip_channels, unet.bottleneck_channels, z_mode="scale_shift"
        )

    @property
    def unet(self) -> UNet:
        return self._unet[0]

    def frozen_modules(self) -> list[nn.Module]:
        return [self.time_embed, self.input_blocks, self.middle_block, self.output_blocks, self.out]

    def forward(self, x_t: Tensor, t: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return (eps_theta, G): the frozen DPM's prediction (no graph) and the shift (with graph)."""
        with torch.no_grad():
            emb = self.unet.embed_time(t)
            h, hs = self.unet.encode_half(x_t, emb)
            eps = self.unet.decode_half(h, hs, emb)
        z_emb = self.label_emb(z)
        g = self.shift_middle_block(h, emb, z_emb)
        for block, skip in zip(self.shift_output_blocks, reversed(hs), strict=True):
            g = block(torch.cat([g, skip], dim=1), emb, z_emb)
        return eps, self.shift_out(g)
