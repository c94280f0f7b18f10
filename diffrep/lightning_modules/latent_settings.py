"""The latent DPM's settings in groups, like every method's (``settings.py``): its network, its schedule
and how it samples. The optimiser and EMA are the shared ``OptimiserSettings`` and ``EMASettings`` with
the official latent recipe as defaults (AdamW 1e-3, weight decay 0.01; EMA 0.9999). Plain Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from diffrep.diffusion.schedule import TIMESTEP_GRIDS, ScheduleConfig
from diffrep.errors import ConfigError


@dataclass(frozen=True)
class LatentNetwork:
    """The latent denoiser, ``LatentMLP`` (the official MLP with skips): ``hidden`` wide, ``num_layers``
    deep, a ``time_dim`` time embedding, ``dropout``. The paper's is 2048 x 10."""

    hidden: int = 2048
    num_layers: int = 10
    time_dim: int = 64
    dropout: float = 0.0


@dataclass(frozen=True)
class LatentSampling:
    """Latent DDIM from N(0, I): ``clip_codes`` clamps z_T and each z0 estimate to [-1, 1] (PDAE's official
    sampler; Diff-AE's clamps nothing), ``latent_grid`` 'official' stops at the latent t = 0 level,
    ``latent_steps`` (None: the image's number of steps); ``timestep_grid`` of the image decoding (None:
    the base model's)."""

    clip_codes: bool = True
    latent_grid: str = "official"
    latent_steps: int | None = None
    timestep_grid: str | None = None

    def __post_init__(self) -> None:
        if self.latent_grid not in TIMESTEP_GRIDS:
            raise ConfigError(f"unknown sampling.latent_grid {self.latent_grid!r}; "
                              f"choose one of {list(TIMESTEP_GRIDS)}")


#: the official latent schedule: constant beta 0.008 over T = 1000
LATENT_SCHEDULE = ScheduleConfig(kind="discrete", num_timesteps=1000, beta_schedule="constant", beta_end=0.008)


def latent_schedule(given: ScheduleConfig | dict[str, Any] | None) -> ScheduleConfig:
    """``given`` over the official latent schedule, so ``{beta_end: 0.01}`` keeps it constant over 1000 steps."""
    if isinstance(given, ScheduleConfig):
        return given
    return dataclasses.replace(LATENT_SCHEDULE, **(given or {}))
