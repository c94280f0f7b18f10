"""PDAE: an autoencoder from a frozen pre-trained DPM (Lin, Zhao, Zhang, NeurIPS 2022).

An encoder z = E(x0) and the gradient estimator G(x_t, z, t) fill the gap between the DPM's
posterior mean and the true one: mu = mu_theta(x_t, t) + btilde_t G. In eps space (eq. 9-11)
    L = E lambda_t || eps - (eps_theta(x_t, t) + c_t G(x_t, z, t)) ||^2,
    lambda_t = SNR^gamma / (1 + SNR), gamma = 0.1.
Only E and G's new decoder learn; the DPM is frozen, builds no graph, and is stored once.
Sampling uses the classifier-guidance form eps_hat = eps_theta - sqrt(1 - abar_t) G.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.checkpoints import load_dpm_with_origin
from diffrep.diffusion.objective import PRESETS, DenoisingObjective
from diffrep.diffusion.process import append_dims, mean_shift_eps_coefficient
from diffrep.diffusion.sampling import EpsFn
from diffrep.errors import ConfigError
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin, UnsupportedOperation
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.lightning_modules.settings import (
    EMASettings,
    FastPaths,
    SamplingSettings,
    as_saved,
    grouped_settings,
    only_ddim,
)
from diffrep.nets.encoders import build_encoder
from diffrep.nets.shift_unet import ShiftUNet


class PDAE(DiffusionBackboneMixin, L.LightningModule):
    def __init__(
        self,
        dpm_checkpoint: str = "runs/dpm/checkpoints/last.ckpt",
        dpm_config: str | None = None,
        encoder: str | dict[str, Any] = "conv",
        latent_dim: int = 32,
        objective: DenoisingObjective = PRESETS["pdae"],
        optimisation: OptimiserSettings = OptimiserSettings(),
        ema: EMASettings = EMASettings(),
        sampling: SamplingSettings = SamplingSettings(),
        shift_off_fraction: float = 0.3,
        fast: FastPaths = FastPaths(),
    ) -> None:
        """``encoder``: a name ('conv', the official PDAE encoder), ``{kind: NAME, <its settings>}`` or your
        own ``{class_path, init_args}`` (``diffrep.nets.encoders.build_encoder``); ``objective``: PDAE's
        lambda_t = SNR^gamma / (1 + SNR) with gamma 0.1 by default."""
        super().__init__()
        settings = grouped_settings(type(self), objective=objective, optimisation=optimisation, ema=ema,
                                    sampling=sampling, fast=fast)
        self.save_hyperparameters()
        self.hparams.update(as_saved(settings))
        unet, schedule, self.dpm_origin = load_dpm_with_origin(dpm_checkpoint, dpm_config)
        if schedule.kind != "discrete":
            raise ConfigError(
                f"PDAE needs a DPM on a discrete (DDPM) schedule; {dpm_checkpoint} uses {schedule.kind!r}"
            )
        only_ddim(settings["sampling"], "PDAE")
        cfg = unet.config
        self.setup_backbone(schedule, settings["objective"], settings["optimisation"], settings["ema"],
                            (cfg.in_channels, cfg.image_size, cfg.image_size), settings["sampling"].timestep_grid)
        self.encoder = build_encoder(encoder, cfg.in_channels, cfg.image_size, latent_dim)
        self.decoder = ShiftUNet(unet, latent_dim)
        for module in self.decoder.frozen_modules():
            self.freeze(module, "pre-trained DPM")
        self.shift_off_fraction = shift_off_fraction
        self.setup_fast_paths(settings["fast"])
        self.setup_ema()

    # ------------------------------------------------------------------ training
    def shifted_eps(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
        """eps_theta + c_t G: the training-time prediction whose error the loss weighs."""
        eps, g = self.decoder(self.to_memory_format(x_t), t, z)
        return eps + append_dims(mean_shift_eps_coefficient(self.schedule, t), g) * g.float()

    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        """PDAE eq. 11: the lambda_t-weighted error of eps_theta + c_t G(x_t, E(x0), t)."""
        z = self.encoder(x0)
        return self.denoising_loss(x0, lambda x_t, tt: self.shifted_eps(x_t, tt, z), t)[0]

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {
            **super().checkpoint_metadata(),
            "latent_dim": self.encoder.latent_dim,
            "unet": self.decoder.config.as_dict(),
            "dpm": self.dpm_origin,  # which stage-1 step this PDAE adapts (a pre-empted stage 1 shows here)
        }

    def fast_path_network(self) -> torch.nn.Module:
        return self.decoder

    def on_fit_start(self) -> None:
        """Say which stage-1 step this run adapts (after a pre-empted stage 1, the step shows it)."""
        super().on_fit_start()
        origin = self.dpm_origin
        step = "step unknown" if origin.get("step") is None else f"step {origin['step']}"
        if self.trainer.is_global_zero:
            print(f"diffrep: PDAE adapts the frozen DPM of {origin['path']} ({step})", flush=True)

    # ---------------------------------------------------------------- sampling
    def guided_eps_fn(self, z: Tensor | None, shift_from: int | float | None = None) -> EpsFn:
        """eps_hat = eps_theta - sqrt(1 - abar_t) G for DDIM; without z (or below ``shift_from``) plain DPM."""

        def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
            x_t = self.to_memory_format(x_t)
            if z is None or (shift_from is not None and float(t[0]) < shift_from):
                return self.decoder.unet(x_t, t)
            eps, g = self.decoder(x_t, t, z)
            return eps - append_dims(self.schedule.sigma(t), g) * g

        return eps_fn

    def encode(self, x0: Tensor) -> Tensor:
        with self.inference():
            return self.encoder(x0)

    def code_of(self, x0: Tensor) -> Tensor:
        return self.encoder(x0)

    def code_eps_fn(self, z: Tensor | None) -> EpsFn:
        return self.guided_eps_fn(z)

    def code_path(self, ends: Tensor, weight: Tensor) -> Tensor:
        """lerp z (PDAE sec. 4.3; x_T is slerped)."""
        return torch.lerp(ends[:1], ends[1:], weight[:, None])

    def shift_from(self, num_steps: int) -> float:
        """The lowest time at which ``generate`` still applies the shift.

        The paper switches G off for the last ``shift_off_fraction`` (0.3) of the DDIM steps:
        fine detail then comes from the DPM alone, which suits codes it never saw. On the
        ``official`` grid this is the official rule (call i of N, counted from the bottom, has
        the shift iff i - 1 >= int(fraction N)); on ``linspace``, t >= fraction T.
        """
        if self.timestep_grid != "official":
            return self.shift_off_fraction * (self.schedule.t_max + 1)
        up = self.schedule.ddim_levels(num_steps, "official")[0].flip(0)
        first_on = int(self.shift_off_fraction * (len(up) - 1)) + 1
        return float(up[first_on]) if first_on < len(up) else float("inf")

    def generate(self, z: Tensor, x_T: Tensor, num_steps: int = 100) -> Tensor:
        """Decode new codes (e.g. from a latent DPM) with the shift off for the last steps."""
        return self.decode(z, x_T, num_steps, eps_fn=self.guided_eps_fn(z, self.shift_from(num_steps)))

    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        raise UnsupportedOperation(
            "PDAE generates through a DPM on its codes: train one with `diffrep fit --config "
            "configs/pdae_latent.yaml` and sample from that checkpoint (or decode codes with generate(z, x_T))"
        )

