"""Diff-AE (Preechakul et al., CVPR 2022), the autoencoder PDAE is measured against.

The same structure as DRL — an encoder trained jointly with a code-conditioned denoiser — on a
DDPM (VP) schedule with L_simple and uniform t, Diff-AE's semantic encoder (single-conv blocks, attention
at 16x16, pooling; ``diffrep.nets.encoders.HalfUNetEncoder``), and
the U-Net's ResBlocks modulated as h = (GN(h)(1 + t_s) + t_b)(1 + z_s) (``z_mode: scale``).
Decoding is DDIM; DDIM inversion gives the stochastic code x_T. Everything else is DRL's.
"""

from __future__ import annotations

from typing import Any

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules.drl import DRL


class DiffAE(DRL):
    def __init__(
        self,
        *args: Any,
        encoder: str = "halfunet",
        latent_dim: int = 512,
        weighting: str = "uniform",
        lr: float = 1e-4,
        ema_decay: float | None = 0.9999,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            *args, encoder=encoder, latent_dim=latent_dim, z_mode="scale", weighting=weighting, lr=lr,
            ema_decay=ema_decay, **kwargs,
        )

    @staticmethod
    def default_schedule() -> ScheduleConfig:
        """DDPM: linear betas 1e-4..0.02 over T = 1000."""
        return ScheduleConfig(kind="discrete", num_timesteps=1000, beta_schedule="linear")
