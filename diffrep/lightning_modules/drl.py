"""DRL and VDRL: an encoder trained jointly with a code-conditioned denoiser (Mittal et al., ICML 2023).

Loss (score space, as in the paper): E_t lambda(t) || s(x_t, t, z) - grad log p_0t(x_t | x0) ||^2 with
z = E(x0) or E(x0, t). With lambda(t) = sigma(t)^2 this is exactly the unit-weighted eps error the
objective computes (``diffrep.diffusion.weighting``). Unconditional denoising has an irreducible error;
z lowers it only by carrying information about x0, which is what makes it a representation, and the
time sampler chooses which noise levels (which details) the code is paid to explain.

VDRL (``code.variational``) adds kl_weight * KL(q(z|x0) || N(0, I)); ``code.kl_weight`` and reg-DRL's
``code.l1`` are stated against the official summed loss 0.5 sum_pixels(...), so with a per-pixel mean
objective they enter scaled by 2 / pixels (same optimum). The code, static E(x0) or time-dependent
E(x0, t), is ``learned_code.py``'s. Every option (networks, samplers, the official data space and
training-step switches, released checkpoints) is in docs/methods.md, "DRL, VDRL and Diff-AE".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.diffusion.objective import DenoisingObjective
from diffrep.diffusion.schedule import ScheduleConfig, VESchedule
from diffrep.diffusion.sde_sampling import SDE_SAMPLERS
from diffrep.errors import ConfigError
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin
from diffrep.lightning_modules.code_prior import CodePriorMixin
from diffrep.lightning_modules.denoisers import build_code_denoiser, eps_of, network_settings, saved_network
from diffrep.lightning_modules.learned_code import CodeFn, LearnedCodeMixin
from diffrep.lightning_modules.official_loading import OfficialLoadingMixin
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.lightning_modules.settings import (
    CodePriorSettings,
    CodeSettings,
    EMASettings,
    FastPaths,
    SamplingSettings,
    Standardisation,
    as_saved,
    grouped_settings,
)
from diffrep.nets.codes import gaussian_kl, reparameterise
from diffrep.nets.data_space import channel_standardisation

SAMPLERS = ("ddim", *SDE_SAMPLERS)


class DRL(LearnedCodeMixin, CodePriorMixin, OfficialLoadingMixin, DiffusionBackboneMixin, L.LightningModule):
    def __init__(
        self,
        network: str | dict[str, Any] | None = None,
        schedule: ScheduleConfig | None = None,
        encoder: str | dict[str, Any] = "conv",
        code: CodeSettings = CodeSettings(),
        objective: DenoisingObjective = DenoisingObjective(weighting="sigma2"),
        optimisation: OptimiserSettings = OptimiserSettings(lr=2e-4),
        ema: EMASettings = EMASettings(decay=0.999),
        prior: CodePriorSettings = CodePriorSettings(),
        sampling: SamplingSettings = SamplingSettings(),
        standardise: Standardisation | None = None,
        fast: FastPaths = FastPaths(),
        official_checkpoint: str | None = None,
    ) -> None:
        """``network``: the code-conditioned denoiser, a kind, ``{kind: unet | ncsnpp | beatgans, z_mode: ...,
        <its settings>}`` or your own ``{class_path, init_args}`` (``denoisers.network_settings``);
        ``encoder``: a name, ``{kind: NAME, <its settings>}`` or your own ``{class_path, init_args}``; the other
        groups are ``settings.py``'s."""
        super().__init__()
        settings = grouped_settings(type(self), code=code, objective=objective, optimisation=optimisation, ema=ema,
                                    prior=prior, sampling=sampling, standardise=standardise, fast=fast)
        kind, net_settings, z_mode = network_settings(network)
        if isinstance(schedule, dict):  # the fields given, over the method's own schedule
            schedule = dataclasses.replace(self.default_schedule(), **schedule)
        schedule = schedule or self.default_schedule()
        self.save_hyperparameters()
        self.hparams.update(network=saved_network(kind, net_settings, z_mode), schedule=vars(schedule).copy(),
                            **as_saved(settings))
        code = settings["code"]
        self.sampler = settings["sampling"].sampler
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampling.sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        self.setup_backbone(schedule, settings["objective"], settings["optimisation"], settings["ema"],
                            (net_settings.in_channels, net_settings.image_size, net_settings.image_size),
                            settings["sampling"].timestep_grid)
        if self.sampler != "ddim" and not isinstance(self.schedule, VESchedule):
            raise ConfigError(f"sampler {self.sampler!r} is the VE SDE's (DRL's schedule: kind ve); use ddim here")
        std = settings["standardise"]
        self.standardisation = None if std is None else channel_standardisation(std.mean, std.std,
                                                                                net_settings.in_channels)
        self.setup_code(encoder, code, net_settings.in_channels, net_settings.image_size)  # learned_code.py
        self.unet = build_code_denoiser(kind, net_settings, code.latent_dim, z_mode)
        self.eps_fn = eps_of(self.unet)
        self.setup_code_prior(settings["prior"])  # DRL's prior for `sample` (code_prior.py)
        self.setup_fast_paths(settings["fast"])
        self.setup_ema()
        if official_checkpoint:
            self.load_official_checkpoint(official_checkpoint)

    official_layout = "score_sde"  # released checkpoints: official_loading.score_sde_state

    @staticmethod
    def default_schedule() -> ScheduleConfig:
        """The paper's VE SDE: sigma(t) = 0.01 * 5000^t, t in [1e-5, 1]."""
        return ScheduleConfig(kind="ve", sigma_min=0.01, sigma_max=50.0)

    # ------------------------------------------------------------- training
    def eps(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
        """The score network's eps prediction, whatever its convention (``denoisers.eps_of``)."""
        return self.eps_fn(self.unet, self.schedule, x_t, t, z, self.to_memory_format)

    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        if t is None:
            t = self.sample_time(x0.shape[0], x0.device)
        mean, logvar = self.code_params(x0, t if self.time_dependent else None)
        z = reparameterise(mean, logvar) if logvar is not None else mean
        loss = self.denoising_loss(self.to_data_space(x0), lambda x_t, tt: self.eps(x_t, tt, z), t=t)[0]
        scale = self.objective.regulariser_scale(x0)  # lambda_z and the KL are stated against the half sum
        if logvar is not None:
            kl = gaussian_kl(mean, logvar).mean()
            loss = loss + scale * self.kl_weight * kl
            if self.training:
                self.log("train/kl", kl)
        elif self.code_l1:
            loss = loss + scale * self.code_l1 * z.abs().sum(1).mean()
        if self.training and not self.time_dependent:
            self.track_code_prior(mean.detach())
        return loss

    def checkpoint_metadata(self) -> dict[str, Any]:
        config = getattr(self.unet, "config", None)  # a user's network (class_path) has its saved spec instead
        network = config.as_dict() if config is not None else self.hparams["network"]
        return {**super().checkpoint_metadata(), "unet": network, "latent_dim": self.latent_dim}

    # --------------------------------------------------------- evaluation API
    def code_eps_fn(self, code_fn: CodeFn) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda x_t, t: self.eps(x_t, t, code_fn(t))

    def generate(self, z: Tensor, x_T: Tensor, num_steps: int = 100) -> Tensor:
        """Decode new (static) codes from x_T: the decoder half of generation, with ``sampler``
        (DDIM, or the official code's PC sampler / probability-flow ODE, ``diffrep.diffusion.sde_sampling``;
        ``num_steps`` is then the PC sampler's number of levels)."""
        if self.sampler == "ddim":
            return self.decode(lambda t: z, x_T, num_steps)
        with self.inference():
            return self.to_images(SDE_SAMPLERS[self.sampler](self.code_eps_fn(lambda t: z), self.schedule, x_T,
                                                             num_steps))

    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        z = self.sample_codes(n, generator, num_steps)
        return self.generate(z, self.noise(n, generator), num_steps)


class VDRL(DRL):
    """DRL with a variational code: ``code.variational`` defaults to True (see the module docstring)."""

    def __init__(self, *args: Any, code: CodeSettings = CodeSettings(variational=True), **kwargs: Any) -> None:
        super().__init__(*args, code=code, **kwargs)
