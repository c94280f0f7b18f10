"""Noise schedules: the one object that owns every diffusion coefficient.

Every method speaks the same vocabulary, x_t = alpha(t) * x0 + sigma(t) * eps, so the
samplers, loss weights and time samplers work for discrete DDPM (Ho et al. 2020) and the
continuous VE/VP SDEs (Song et al. 2021) alike. Coefficients are computed once in float64
(as in guided-diffusion) and handed out in float32 on the device of ``t``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from diffrep.errors import ConfigError

#: DDIM step grids (``NoiseSchedule.ddim_levels``): diffrep's default, the official PDAE one, and
#: the official Diff-AE one.
TIMESTEP_GRIDS = ("linspace", "official", "diffae")


class NoiseSchedule(nn.Module, ABC):
    """Base class: alpha(t), sigma(t), snr(t) for a batch of times ``t``."""

    #: True when t is an integer step index in [0, T-1]; False for continuous t in [t_min, 1].
    discrete: bool = False

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def sigma(self, t: Tensor) -> Tensor: ...

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio alpha^2 / sigma^2."""
        return (self.alpha(t) / self.sigma(t)) ** 2

    @abstractmethod
    def t_from_sigma_ratio(self, ratio: Tensor) -> Tensor:
        """Time at which sigma(t)/alpha(t) equals ``ratio`` (used by noise-level samplers)."""

    @property
    @abstractmethod
    def t_min(self) -> float: ...

    @property
    @abstractmethod
    def t_max(self) -> float: ...

    def ddim_levels(self, num_steps: int, grid: str = "linspace") -> tuple[Tensor, bool]:
        """The noise levels a ``num_steps``-call DDIM loop walks, from high to low, and whether it
        ends on the clean image (alpha = 1, sigma = 0) after the last one.

        - ``linspace`` (diffrep's default): N levels round(linspace(0, T-1, N)), high to low; the
          network is called at each and the last call (at t = 0) steps to the clean image.
          Inversion walks the same levels upwards, so it makes N - 1 calls. With N = 1 the one
          call is at t = T-1 (from pure noise straight to the clean image).
        - ``official`` (ckczzj/PDAE's and phizaz/diffae's samplers): N + 1 levels
          int(linspace(0, T-1, N + 1)); the network is called at the top N of them and the loop
          stops at the lowest (t = 0), returning x at that level rather than a clean estimate.
          Inversion calls the network at the lowest N, so it makes N calls.
        - ``diffae`` (phizaz/diffae's ``ddimN`` respacing, guided-diffusion's ``space_timesteps``):
          N levels range(0, T, k) with the integer stride k that gives exactly N of them (0, 100,
          ..., 900 for N = 10 of 1000); the network is called at each and the last call steps to
          the clean image. Inversion calls the network at all N and the last call steps from the top
          level to alpha = 0 (the official ``alphas_cumprod_next`` ends with 0): x_T is the eps
          estimate there. Discrete schedules only.
        Continuous schedules use linspace(t_max, t_min, N) and linspace(t_max, t_min, N + 1) alike.
        """
        if num_steps < 1:
            raise ConfigError(f"num_steps must be >= 1, got {num_steps}")
        if grid not in TIMESTEP_GRIDS:
            raise ConfigError(f"unknown timestep_grid {grid!r}; choose one of {list(TIMESTEP_GRIDS)}")
        official = grid == "official"
        if grid == "diffae":
            return self._strided_levels(num_steps), True
        points = num_steps + 1 if official else num_steps
        if not self.discrete:
            return torch.linspace(self.t_max, self.t_min, points, dtype=torch.float64), not official
        if official:  # numpy's linspace and int() truncation, exactly as the official samplers
            grid_np = np.linspace(0, self.t_max, points)
            levels = torch.tensor(sorted({int(v) for v in grid_np}), dtype=torch.long)
        elif num_steps == 1:
            levels = torch.tensor([int(self.t_max)], dtype=torch.long)
        else:
            levels = torch.unique(torch.linspace(0, self.t_max, points, dtype=torch.float64).round().long())
        return levels.flip(0), not official

    def _strided_levels(self, num_steps: int) -> Tensor:
        """Diff-AE's levels, high to low: range(0, T, k) for the smallest k giving ``num_steps``."""
        if not self.discrete:
            raise ConfigError("the diffae timestep grid respaces a discrete (DDPM) schedule")
        total = int(self.t_max) + 1
        for stride in range(1, total):
            if len(range(0, total, stride)) == num_steps:
                return torch.arange(0, total, stride, dtype=torch.long).flip(0)
        if num_steps == total:
            return torch.arange(total - 1, -1, -1, dtype=torch.long)
        raise ConfigError(f"the diffae grid cannot take exactly {num_steps} of {total} steps with an integer "
                          "stride (as the official code refuses); choose another number of steps")

    def sampling_times(self, num_steps: int, grid: str = "linspace") -> Tensor:
        """The times at which a ``num_steps``-step DDIM sampler calls the network, high to low."""
        levels, ends_clean = self.ddim_levels(num_steps, grid)
        return levels if ends_clean else levels[:-1]

    def model_time(self, t: Tensor) -> Tensor:
        """The time fed to a network's sinusoidal embedding: the step index, or 1000 t."""
        return t if self.discrete else t * 1000.0

    def _out(self, value: Tensor, t: Tensor) -> Tensor:
        return value.to(device=t.device, dtype=torch.float32)


class DiscreteSchedule(NoiseSchedule):
    """DDPM schedule with T steps: linear betas (Ho et al.) or cosine (Nichol & Dhariwal)."""

    discrete = True

    def __init__(
        self,
        num_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps
        self.beta_schedule = beta_schedule
        betas = make_betas(beta_schedule, num_timesteps, beta_start, beta_end)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)
        self.register_buffer("alphas_cumprod_prev", alphas_cumprod_prev, persistent=False)

    def gather(self, table: Tensor, t: Tensor) -> Tensor:
        """Per-sample values of a float64 table (T,), in float32 on t's device."""
        index = t.long().to(table.device).clamp(0, self.num_timesteps - 1)
        return self._out(table[index], t)

    def alpha(self, t: Tensor) -> Tensor:
        return self.gather(self.alphas_cumprod.sqrt(), t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.gather((1.0 - self.alphas_cumprod).sqrt(), t)

    def snr(self, t: Tensor) -> Tensor:
        abar = self.alphas_cumprod
        return self.gather(abar / (1.0 - abar), t)

    def beta(self, t: Tensor) -> Tensor:
        return self.gather(self.betas, t)

    def alpha_bar_prev(self, t: Tensor) -> Tensor:
        return self.gather(self.alphas_cumprod_prev, t)

    def posterior_variance(self, t: Tensor) -> Tensor:
        """btilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (Ho et al. eq. 7)."""
        table = self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        return self.gather(table, t)

    def t_from_sigma_ratio(self, ratio: Tensor) -> Tensor:
        table = ((1.0 - self.alphas_cumprod) / self.alphas_cumprod).sqrt().to(ratio.device)
        index = torch.searchsorted(table, ratio.to(table.dtype).contiguous())
        return index.clamp(0, self.num_timesteps - 1)

    @property
    def t_min(self) -> float:
        return 0

    @property
    def t_max(self) -> float:
        return self.num_timesteps - 1


def make_betas(kind: str, num_timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """Beta sequence in float64; 'linear' is scaled for T != 1000 as in improved DDPM;
    'constant' puts every beta at ``beta_end`` (Diff-AE's latent DPM: 0.008)."""
    if kind == "constant":
        return torch.full((num_timesteps,), float(beta_end), dtype=torch.float64)
    if kind == "linear":
        scale = 1000 / num_timesteps
        return torch.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ConfigError(f"unknown beta_schedule {kind!r}; choose 'linear', 'cosine' or 'constant'")


class ContinuousSchedule(NoiseSchedule):
    """An SDE schedule on t in [t_eps, 1] (t_eps keeps sigma off 0 at the clean end)."""

    t_eps: float

    @property
    def t_min(self) -> float:
        return self.t_eps

    @property
    def t_max(self) -> float:
        return 1.0

    def clamp_time(self, t: Tensor) -> Tensor:
        return t.clamp(self.t_eps, 1.0).to(torch.float32)


class VESchedule(ContinuousSchedule):
    """Variance-exploding SDE: alpha = 1, sigma(t) = sigma_min (sigma_max/sigma_min)^t (DRL)."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, t_eps: float = 1e-5) -> None:
        super().__init__()
        self.sigma_min, self.sigma_max, self.t_eps = sigma_min, sigma_max, t_eps

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t, dtype=torch.float32)

    def sigma(self, t: Tensor) -> Tensor:
        t64 = t.to(torch.float64)
        return self._out(self.sigma_min * (self.sigma_max / self.sigma_min) ** t64, t)

    def t_from_sigma_ratio(self, ratio: Tensor) -> Tensor:
        return self.clamp_time(torch.log(ratio.double() / self.sigma_min) / math.log(self.sigma_max / self.sigma_min))


class VPSchedule(ContinuousSchedule):
    """Variance-preserving SDE with linear beta(t) in [beta_min, beta_max] (Song et al. 2021)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_eps: float = 1e-5) -> None:
        super().__init__()
        self.beta_min, self.beta_max, self.t_eps = beta_min, beta_max, t_eps

    def _log_alpha(self, t: Tensor) -> Tensor:
        t64 = t.to(torch.float64)
        return -0.25 * t64**2 * (self.beta_max - self.beta_min) - 0.5 * t64 * self.beta_min

    def alpha(self, t: Tensor) -> Tensor:
        return self._out(self._log_alpha(t).exp(), t)

    def sigma(self, t: Tensor) -> Tensor:
        return self._out((-torch.expm1(2 * self._log_alpha(t))).sqrt(), t)

    def t_from_sigma_ratio(self, ratio: Tensor) -> Tensor:
        # sigma/alpha = r  <=>  log alpha = -0.5 log(1 + r^2); solve the quadratic in t.
        log_alpha = -0.5 * torch.log1p(ratio.double() ** 2)
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        return self.clamp_time((-b + torch.sqrt(b * b - 4 * a * log_alpha)) / (2 * a))


@dataclass
class ScheduleConfig:
    """A schedule as written in configs; ``kind`` is 'discrete', 've' or 'vp'.

    Only the fields of the chosen kind are used: discrete (num_timesteps, beta_schedule,
    beta_start, beta_end), ve (sigma_min, sigma_max, t_eps), vp (beta_min, beta_max, t_eps).
    """

    kind: str = "discrete"
    num_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    beta_min: float = 0.1
    beta_max: float = 20.0
    t_eps: float = 1e-5

    def build(self) -> NoiseSchedule:
        if self.kind == "discrete":
            return DiscreteSchedule(self.num_timesteps, self.beta_schedule, self.beta_start, self.beta_end)
        if self.kind == "ve":
            return VESchedule(self.sigma_min, self.sigma_max, self.t_eps)
        if self.kind == "vp":
            return VPSchedule(self.beta_min, self.beta_max, self.t_eps)
        raise ConfigError(f"unknown schedule kind {self.kind!r}; choose 'discrete', 've' or 'vp'")
