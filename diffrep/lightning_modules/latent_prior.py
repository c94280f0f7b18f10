"""Sampling codes from a trained LatentDPM without building its base model: what DRL's and
Diff-AE's ``sample`` use when given ``latent_dpm_checkpoint``, and the latent DDIM the LatentDPM
itself samples with. Kept apart from ``latent_dpm.py`` so the methods that sample from a latent
DPM need not import the module that loads them (imports point one way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffrep.checkpoints import CheckpointError, read_checkpoint
from diffrep.diffusion.sampling import ddim_sample
from diffrep.lightning_modules.latent_settings import LatentNetwork, LatentSampling, latent_schedule
from diffrep.lightning_modules.migration import migrate_hparams
from diffrep.lightning_modules.settings import as_settings
from diffrep.nets.latent_mlp import LatentMLP


class LatentPrior(torch.nn.Module):
    """The sampling half of a trained LatentDPM (its EMA MLP, schedule and code statistics),
    read from the LatentDPM checkpoint without its base model: what ``DRL.sample`` and
    ``DiffAE.sample`` draw codes from when given ``latent_dpm_checkpoint``."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        checkpoint = read_checkpoint(path, what="latent DPM checkpoint")
        if checkpoint.get("diffrep", {}).get("method") != "LatentDPM":
            raise CheckpointError(f"{path} is not a LatentDPM checkpoint; pass the last.ckpt that "
                                  "`diffrep fit --config configs/<method>_latent.yaml` writes")
        # settings saved before the grouping are translated (migration.py)
        h = migrate_hparams("LatentDPM", {k: v for k, v in checkpoint["hyper_parameters"].items()
                                          if not k.startswith("_")})
        net = as_settings(h["network"], LatentNetwork, "network", LatentNetwork())
        sampling = as_settings(h["sampling"], LatentSampling, "sampling", LatentSampling())
        state = checkpoint["state_dict"]
        latent_dim = state["z_mean"].numel()
        self.net = LatentMLP(latent_dim, net.hidden, net.num_layers, net.time_dim, dropout=0.0)
        self.net.load_state_dict({k[len("net."):]: v for k, v in state.items() if k.startswith("net.")})
        with torch.no_grad():  # then the EMA weights, by parameter (a shared layer has one EMA entry)
            for name, param in self.net.named_parameters():
                param.copy_(state.get("ema.net__" + name.replace(".", "__"), param))
        self.schedule = latent_schedule(h.get("schedule")).build()
        self.register_buffer("z_mean", state["z_mean"].clone())
        self.register_buffer("z_std", state["z_std"].clone())
        self.clip_codes, self.latent_grid = sampling.clip_codes, sampling.latent_grid
        self.latent_steps = sampling.latent_steps
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def sample_codes(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        z = latent_ddim(self.net, self.schedule, n, self.latent_steps or num_steps, self.clip_codes,
                        self.latent_grid, generator, self.z_mean.device)
        return z * self.z_std + self.z_mean


def latent_ddim(net: LatentMLP, schedule: Any, n: int, num_steps: int, clip_codes: bool, grid: str,
                generator: torch.Generator | None, device: torch.device) -> Tensor:
    """n standardised codes by DDIM from z_T ~ N(0, I) (z_T and each z0 estimate clamped to [-1, 1]
    with ``clip_codes``, as PDAE's official latent sampler does)."""
    z_T = torch.randn(n, net.latent_dim, generator=generator, device=device)
    if clip_codes:
        z_T = z_T.clamp(-1.0, 1.0)
    return ddim_sample(net, schedule, z_T, num_steps, clip_x0=clip_codes, grid=grid)
