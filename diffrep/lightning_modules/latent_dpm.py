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
base model's, so a LatentDPM checkpoint answers the whole evaluation API.

A released Diff-AE ``*_latent`` checkpoint (``official_checkpoint``, with ``base_config`` naming the
diffrep config of its autoencoder, e.g. configs/diffae_ffhq128.yaml) gives the base model and the
latent DPM both: the autoencoder's EMA weights, the ``latent_net`` (MLPSkipNet, the same layers as
``LatentMLP``; raw and EMA) and the code statistics it was trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.checkpoints import CheckpointError
from diffrep.diffusion.objective import PRESETS
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.evaluation.features import encode_split
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin
from diffrep.lightning_modules.diffae import DiffAE
from diffrep.lightning_modules.latent_prior import latent_ddim
from diffrep.lightning_modules.latent_settings import LATENT_SCHEDULE, LatentNetwork, LatentSampling, latent_schedule
from diffrep.lightning_modules.loading import in_its_ema_weights, load_trained
from diffrep.lightning_modules.migration import old_setting
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.lightning_modules.settings import EMASettings, as_saved, grouped_settings
from diffrep.nets.latent_mlp import LatentMLP
from diffrep.official_checkpoints import OfficialWeights, load_raw_and_ema, read_official

#: Methods whose codes a latent DPM can model: one static code per image.
CODE_METHODS = ("PDAE", "DRL", "VDRL", "DiffAE")
#: the latent DPM's settings groups, by argument name (``settings.grouped_settings``)
LATENT_GROUPS: dict[str, type] = {"network": LatentNetwork, "optimisation": OptimiserSettings, "ema": EMASettings,
                                  "sampling": LatentSampling}


def official_diffae(weights: OfficialWeights, path: str, base_config: str | None) -> DiffAE:
    """The autoencoder of a released Diff-AE file (read once, ``weights``), built from ``base_config`` (a
    diffrep config of the same architecture, e.g. configs/diffae_ffhq128.yaml: its ``model.init_args``),
    its EMA weights in for good."""
    import yaml

    if not base_config or not Path(base_config).is_file():
        raise ConfigError(f"an official Diff-AE checkpoint needs base_config: the diffrep config of its autoencoder "
                          f"(e.g. configs/diffae_ffhq128.yaml); got {base_config!r}")
    model = yaml.safe_load(Path(base_config).read_text()).get("model", {})
    if not str(model.get("class_path", "")).endswith("DiffAE"):
        raise ConfigError(f"base_config {base_config} configures {model.get('class_path')!r}, not a DiffAE")
    old = old_setting("DiffAE", list(model.get("init_args", {})))
    if old:
        raise ConfigError(f"base_config {base_config} sets model.init_args.{old[0]}, which is now "
                          f"model.init_args.{old[1]}")
    base = DiffAE(**{**model.get("init_args", {}), "fast": None, "official_checkpoint": None})
    base.load_official_weights(weights, path)
    return in_its_ema_weights(base)


class LatentDPM(DiffusionBackboneMixin, L.LightningModule):
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
            self.load_official_latent(released, official_checkpoint)

    def load_official_latent(self, weights: OfficialWeights, path: str) -> None:
        """A released Diff-AE ``*_latent`` last.ckpt: its ``latent_net`` (raw into the MLP, EMA into
        diffrep's EMA) and its code statistics ``conds_mean``/``conds_std`` (so fit does not recompute them)."""
        raw, ema = ({f"net.{k.removeprefix('latent_net.')}": v for k, v in state.items() if k.startswith("latent_net.")}
                    for state in (weights.raw, weights.ema))
        if not raw or "conds_mean" not in weights.config:
            raise CheckpointError(f"{path} has no latent DPM (latent_net, conds_mean): it is a Diff-AE autoencoder "
                                  "alone; the released *_latent checkpoints carry one")
        load_raw_and_ema(self, raw, ema, ("net.",), path)
        self.z_mean.copy_(weights.config["conds_mean"].reshape(-1))
        self.z_std.copy_(weights.config["conds_std"].reshape(-1))

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

    def encode(self, x0: Tensor) -> Tensor:
        return self.base.encode(x0)

    def reconstruct(self, x0: Tensor, num_steps: int = 100, inversion_steps: int | None = None) -> Tensor:
        return self.base.reconstruct(x0, num_steps, inversion_steps)

    def check_editable(self) -> None:
        self.base.check_editable()

    def manipulate(self, x0: Tensor, direction: Any, scales: list[float], num_steps: int = 100,
                   inversion_steps: int | None = None) -> Tensor:
        return self.base.manipulate(x0, direction, scales, num_steps, inversion_steps)

    def reconstruct_from_noise(
        self, x0: Tensor, num_steps: int = 100, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.base.reconstruct_from_noise(x0, num_steps, generator)

    def interpolate(self, x_a: Tensor, x_b: Tensor, num_points: int = 8, num_steps: int = 100) -> Tensor:
        return self.base.interpolate(x_a, x_b, num_points, num_steps)
