"""A DPM on the codes of a trained representation model, so it can generate new images: the
latent DPM of PDAE (sec. 4.4) and of Diff-AE, for any diffrep method with a static code (PDAE,
Diff-AE, DRL, VDRL).

As in the official code (ckczzj/PDAE ``config/*_latent.yml``, ``sampler/infer_latents.py``, the
latent branch of ``diffusion/gaussian_diffusion.py``; phizaz/diffae ``templates_latent.py``):
- codes z = E(x0) of the frozen model are standardised with the mean and std of the codes of the
  whole training split (``norm_items`` limits that, e.g. for a quick run), computed once at the
  start of fit under the model's EMA weights and saved with the latent DPM;
- an MLP with skips (``diffrep.nets.LatentMLP``; the paper's 2048 wide x 10 layers) predicts
  eps on a constant-beta (0.008, T = 1000) schedule, with an L1 loss; AdamW, lr 1e-3, weight
  decay 0.01, EMA 0.9999;
- sampling is a latent DDIM from z_T ~ N(0, I). With ``clip_codes`` (PDAE's official sampler,
  the default) z_T and every predicted z0 are clamped to [-1, 1] ("may slightly improve sample
  quality", the official comment) and ``sampling.latent_grid: official`` stops at the latent schedule's
  t = 0 level instead of a clean estimate; Diff-AE's official latent sampler clamps nothing
  (``sampling.clip_codes: false``). The image is then decoded by the base model's ``generate`` (PDAE:
  shift off for the last 30% of steps; DRL/Diff-AE: DDIM conditioned on the code).

The base model is loaded from its own checkpoint (self-contained), its EMA weights copied in
once, and frozen; only the MLP trains. ``encode``, ``reconstruct`` and ``interpolate`` are the
base model's (``base_model_api.py``), so a LatentDPM checkpoint answers the whole evaluation API.

A released Diff-AE ``*_latent`` checkpoint (``official_checkpoint``, with ``base_config`` naming the
diffrep config of its autoencoder, e.g. configs/diffae_ffhq128.yaml) gives the base model and the
latent DPM both: the autoencoder's EMA weights, the ``latent_net`` (MLPSkipNet, the same layers as
``LatentMLP``; raw and EMA) and the code statistics it was trained with (``latent_official.py``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.diffusion.objective import PRESETS
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.evaluation.features import encode_split
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin
from diffrep.lightning_modules.base_model_api import BaseModelAPI
from diffrep.lightning_modules.latent_official import load_official_latent, official_diffae
from diffrep.lightning_modules.latent_prior import latent_ddim
from diffrep.lightning_modules.latent_settings import LATENT_SCHEDULE, LatentNetwork, LatentSampling, latent_schedule
from diffrep.lightning_modules.loading import load_trained
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.lightning_modules.settings import EMASettings, as_saved, grouped_settings
from diffrep.nets.latent_mlp import LatentMLP
from diffrep.official_checkpoints import read_official

#: Methods whose codes a latent DPM can model: one static code per image.
CODE_METHODS = ("PDAE", "DRL", "VDRL", "DiffAE")
#: the latent DPM's settings groups, by argument name (``settings.grouped_settings``)
LATENT_GROUPS: dict[str, type] = {"network": LatentNetwork, "optimisation": OptimiserSettings, "ema": EMASettings,
                                  "sampling": LatentSampling}


class LatentDPM(BaseModelAPI, DiffusionBackboneMixin, L.LightningModule):
    def __init__(
        self,
        model_checkpoint: str = "runs/pdae/checkpoints/last.ckpt",
        network: LatentNetwork = LatentNetwork(),
        schedule: ScheduleConfig = LATENT_SCHEDULE,
        optimisation: OptimiserSettings = OptimiserSettings("adamw", 1e-3, weight_decay=0.01),
        ema: EMASettings = EMASettings(decay=0.9999),
        sampling: LatentSampling = LatentSampling(),
        norm_items: int | None = None,
        official_checkpoint: str | None = None,
        base_config: str | None = None,
    ) -> None:
        """``network``: the MLP's size (``LatentNetwork``); ``schedule``: fields over the official constant
        beta 0.008, T = 1000 (``latent_settings.latent_schedule``); ``sampling``: ``LatentSampling``;
        ``norm_items``: codes for the standardisation statistics (None: the whole training split)."""
        super().__init__()
        settings = grouped_settings(type(self), LATENT_GROUPS, network=network, optimisation=optimisation, ema=ema,
                                    sampling=sampling)
        schedule = latent_schedule(schedule)
        self.save_hyperparameters()
        self.hparams.update(schedule=vars(schedule).copy(), **as_saved(settings))
        if official_checkpoint:
            released = read_official(official_checkpoint, "diffae")
            self.base = official_diffae(released, official_checkpoint, base_config)
        else:
            self.base = load_trained(model_checkpoint, CODE_METHODS, "the model whose codes a latent DPM learns")
        if getattr(self.base, "time_dependent", False):
            raise ConfigError(f"{model_checkpoint} has a time-dependent code E(x0, t); a latent DPM models one "
                             "static code per image: train the model with time_dependent: false")
        sampling = settings["sampling"]
        self.setup_backbone(schedule, PRESETS["latent_l1"], settings["optimisation"], settings["ema"],
                            image_shape=self.base.image_shape,
                            timestep_grid=sampling.timestep_grid or self.base.timestep_grid)
        self.freeze(self.base, f"trained {type(self.base).__name__}")
        latent_dim = self.base.encode(torch.zeros(1, *self.base.image_shape)).shape[1]
        net = settings["network"]
        self.net = LatentMLP(latent_dim, net.hidden, net.num_layers, net.time_dim, dropout=net.dropout)
        # Code statistics of the training split: computed at the start of fit, saved with the model.
        self.register_buffer("z_mean", torch.zeros(latent_dim))
        self.register_buffer("z_std", torch.ones(latent_dim))
        self.norm_items, self.clip_codes, self.latent_grid = norm_items, sampling.clip_codes, sampling.latent_grid
        self.latent_steps = sampling.latent_steps
        self.setup_ema()
        if official_checkpoint:
            load_official_latent(self, released, official_checkpoint)  # latent_official.py

    def set_timestep_grid(self, grid: str) -> None:
        """The image decoding grid is the base model's; an evaluation's grid reaches it too."""
        super().set_timestep_grid(grid)
        if "base" in self._modules:
            self.base.set_timestep_grid(grid)

    # ------------------------------------------------------------------ codes
    def normalise(self, z: Tensor) -> Tensor:
        return (z - self.z_mean) / self.z_std

    def denormalise(self, z: Tensor) -> Tensor:
        return z * self.z_std + self.z_mean

    def on_fit_start(self) -> None:
        """Mean and std of the codes of the training split (skipped on resume, or when set);
        under DDP the ranks share the encoding and all get the same statistics."""
        super().on_fit_start()
        if self.trainer.ckpt_path or bool(self.z_std.ne(1).any()):
            return
        self.fit_code_statistics(self.trainer.datamodule.splits["train"])

    def fit_code_statistics(self, dataset: Any) -> None:
        z, _ = encode_split(self.base, dataset, self.norm_items)
        self.z_mean.copy_(z.mean(0))
        self.z_std.copy_(z.std(0).clamp_min(1e-6))

    def eps(self, z_t: Tensor, t: Tensor) -> Tensor:
        return self.net(z_t, t)

    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        """L1 eps-prediction loss on standardised codes of the (frozen) base model's encoder."""
        with torch.no_grad():
            z = self.normalise(self.base.encode(x0).float())
        return self.denoising_loss(z, self.eps, t)[0]

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {**super().checkpoint_metadata(), "latent_dim": self.net.latent_dim,
                "base_method": type(self.base).__name__}

    # --------------------------------------------------------- evaluation API
    def sample_codes(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        """New codes z (de-normalised) by latent DDIM from N(0, I); see the module docstring."""
        with self.inference():
            z = latent_ddim(self.net, self.schedule, n, self.latent_steps or num_steps, self.clip_codes,
                            self.latent_grid, generator, self.model_device())
        return self.denormalise(z)

    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        z = self.sample_codes(n, num_steps, generator)
        return self.base.generate(z, self.base.noise(n, generator), num_steps)
