"""Unconditional DPM pre-training (Ho et al. 2020): the model PDAE later adapts.

L_simple = E ||eps - eps_theta(x_t, t)||^2 with t ~ U{0..T-1}, Adam, EMA of the weights; the
EMA weights are what ``diffrep.checkpoints.load_dpm`` hands to a later stage.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.diffusion.process import network_input
from diffrep.diffusion.sampling import ddim_invert, ddim_sample
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin, slerp
from diffrep.nets.unet import UNet, UNetConfig


class DPM(DiffusionBackboneMixin, L.LightningModule):
    """eps-prediction DPM on the guided-diffusion U-Net."""

    def __init__(
        self,
        unet: UNetConfig | dict | None = None,
        schedule: ScheduleConfig | dict | None = None,
        weighting: str = "uniform",
        time_sampler: str = "uniform",
        lr: float = 1e-4,
        warmup_steps: int = 0,
        ema_decay: float | None = 0.9999,
        channels_last: bool = False,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        unet = UNetConfig(**unet) if isinstance(unet, dict) else unet or UNetConfig()
        schedule = ScheduleConfig(**schedule) if isinstance(schedule, dict) else schedule
        self.save_hyperparameters()
        # Plain dicts, so checkpoints load with torch.load(weights_only=True).
        self.hparams["unet"] = unet.as_dict()
        self.hparams["schedule"] = vars(schedule or ScheduleConfig()).copy()
        self.unet = UNet(unet)
        self.setup_backbone(
            schedule or ScheduleConfig(), weighting, None, time_sampler, lr,
            warmup_steps=warmup_steps, ema_decay=ema_decay,
            image_shape=(unet.in_channels, unet.image_size, unet.image_size),
        )
        self.setup_fast_paths(self.unet, channels_last, compile)
        self.setup_ema()

    def eps(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.unet(self.to_memory_format(network_input(self.schedule, x_t, t)), self.schedule.model_time(t))

    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        """L_simple (Ho et al. eq. 14), reweighted by ``weighting``."""
        return self.denoising_loss(x0, self.eps, t)[0]

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {**super().checkpoint_metadata(), "unet": self.unet.config.as_dict()}

    # --------------------------------------------------------- evaluation API
    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        with self.inference():
            return ddim_sample(self.eps, self.schedule, self.noise(n, generator), num_steps)

    def invert(self, x0: Tensor, num_steps: int = 100) -> Tensor:
        """x_T of images by deterministic DDIM inversion (the DPM's only 'code')."""
        with self.inference():
            return ddim_invert(self.eps, self.schedule, x0, num_steps)

    def encode(self, x0: Tensor) -> Tensor:
        return self.invert(x0).flatten(1)

    def reconstruct(self, x0: Tensor, num_steps: int = 100, inversion_steps: int | None = None) -> Tensor:
        x_T = self.invert(x0, inversion_steps or num_steps)
        with self.inference():
            return ddim_sample(self.eps, self.schedule, x_T, num_steps)

    def interpolate(self, x_a: Tensor, x_b: Tensor, num_points: int = 8, num_steps: int = 100) -> Tensor:
        ends = self.invert(torch.stack([x_a, x_b]), num_steps)
        w = torch.linspace(0, 1, num_points, device=ends.device)
        x_T = slerp(ends[:1].expand(num_points, *ends.shape[1:]), ends[1:].expand(num_points, *ends.shape[1:]), w)
        with self.inference():
            return ddim_sample(self.eps, self.schedule, x_T, num_steps)
