"""Unconditional DPM pre-training (Ho et al. 2020): the model PDAE later adapts.

L_simple = E ||eps - eps_theta(x_t, t)||^2 with t ~ U{0..T-1}, Adam, EMA of the weights; the
EMA weights are what ``diffrep.checkpoints.load_dpm`` hands to a later stage.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.diffusion.objective import PRESETS, DenoisingObjective
from diffrep.diffusion.sampling import EpsFn
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin
from diffrep.lightning_modules.denoisers import UserNetwork, eps_of
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.lightning_modules.settings import (
    EMASettings,
    FastPaths,
    SamplingSettings,
    as_saved,
    grouped_settings,
    only_ddim,
)
from diffrep.nets.unet import UNet, UNetConfig


class DPM(DiffusionBackboneMixin, L.LightningModule):
    """eps-prediction DPM on the guided-diffusion U-Net (``unet``: its ``UNetConfig``), or on your own
    network, ``unet: {class_path, init_args}`` (``denoisers.UserNetwork``, called as ``net(x, t)``). PDAE and
    the DPM features read a U-Net DPM: PDAE's shift net is built on the U-Net's encoder half."""

    def __init__(
        self,
        unet: UNetConfig | dict | None = None,
        schedule: ScheduleConfig | None = None,
        objective: DenoisingObjective = PRESETS["ddpm"],
        optimisation: OptimiserSettings = OptimiserSettings(),
        ema: EMASettings = EMASettings(),
        sampling: SamplingSettings = SamplingSettings(),
        fast: FastPaths = FastPaths(),
    ) -> None:
        super().__init__()
        if isinstance(unet, dict) and "class_path" in unet:
            unet = UserNetwork(dict(unet))
        else:
            unet = UNetConfig(**unet) if isinstance(unet, dict) else unet or UNetConfig()
        schedule = ScheduleConfig(**schedule) if isinstance(schedule, dict) else schedule or ScheduleConfig()
        settings = grouped_settings(type(self), objective=objective, optimisation=optimisation, ema=ema,
                                    sampling=sampling, fast=fast)
        self.save_hyperparameters()
        # Plain data, so checkpoints load with torch.load(weights_only=True).
        self.hparams.update(unet=unet.as_dict(), schedule=vars(schedule).copy(), **as_saved(settings))
        self.unet = unet.build(None) if isinstance(unet, UserNetwork) else UNet(unet)
        self.eps_fn = eps_of(self.unet)  # its output convention, read once (lightning_modules/denoisers.py)
        only_ddim(settings["sampling"], "DPM")
        self.setup_backbone(schedule, settings["objective"], settings["optimisation"], settings["ema"],
                            (unet.in_channels, unet.image_size, unet.image_size), settings["sampling"].timestep_grid)
        self.setup_fast_paths(settings["fast"])
        self.setup_ema()

    def eps(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.eps_fn(self.unet, self.schedule, x_t, t, None, self.to_memory_format)

    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        """L_simple (Ho et al. eq. 14), reweighted by ``weighting``."""
        return self.denoising_loss(x0, self.eps, t)[0]

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {**super().checkpoint_metadata(), "unet": self.hparams["unet"]}

    # --------------------------------------------------------- evaluation API
    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(None, self.noise(n, generator), num_steps)

    def code_of(self, x0: Tensor) -> None:
        return None  # a DPM's only "code" is its inverted x_T

    def code_eps_fn(self, code: None) -> EpsFn:
        return self.eps

    def code_path(self, ends: None, weight: Tensor) -> None:
        return None

    def encode(self, x0: Tensor) -> Tensor:
        """The flattened DDIM-inverted x_T."""
        return self.invert(x0).flatten(1)

    def feature_encoder(self, layer: str = "middle_block", t: int = 50):
        """The DPM's own activations as a code (DDAE's reading): ``layer`` pooled at noise level ``t``,
        read under this module's inference context (eval mode, EMA weights), so it can be probed while
        the DPM trains."""
        from diffrep.evaluation.dpm_features import DPMFeatureEncoder

        return DPMFeatureEncoder(self.unet, self.schedule, layer, t, self.inference)
