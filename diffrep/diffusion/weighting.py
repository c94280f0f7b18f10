"""Loss weights lambda(t) and time samplers p(t), chosen by name in configs.

All losses in diffrep are written in eps space, E_t lambda(t) ||eps - eps_hat||^2, so a weight
here multiplies the per-sample squared eps error. Score-space weights convert exactly:
lambda_score(t) ||s - grad log p||^2 = lambda_score(t) / sigma(t)^2 ||eps - eps_hat||^2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from diffrep.diffusion.schedule import NoiseSchedule
from diffrep.errors import ConfigError

LossWeight = Callable[[NoiseSchedule, Tensor], Tensor]


def uniform_weight(schedule: NoiseSchedule, t: Tensor) -> Tensor:
    """L_simple of Ho et al. 2020: every time counts the same in eps space."""
    return torch.ones_like(schedule.sigma(t))


def pdae_weight(schedule: NoiseSchedule, t: Tensor, gamma: float = 0.1) -> Tensor:
    """PDAE eq. 11: lambda_t = (1/(1+SNR))^(1-gamma) (SNR/(1+SNR))^gamma = SNR^gamma / (1+SNR)."""
    snr = schedule.snr(t)
    return snr**gamma / (1 + snr)


def min_snr_weight(schedule: NoiseSchedule, t: Tensor, gamma: float = 5.0) -> Tensor:
    """Min-SNR-gamma (Hang et al. 2023) in eps space: min(SNR, gamma) / SNR."""
    snr = schedule.snr(t)
    return snr.clamp(max=gamma) / snr


_WEIGHTS: dict[str, Callable[..., Tensor]] = {
    "uniform": uniform_weight,
    # DRL/NCSN lambda(t) = sigma(t)^2 on the score error is exactly unit weight in eps space.
    "sigma2": uniform_weight,
    "pdae": pdae_weight,
    "min_snr": min_snr_weight,
}


def loss_weight(name: str, schedule: NoiseSchedule, t: Tensor, gamma: float | None = None) -> Tensor:
    """Per-sample weight by name; ``gamma`` is passed to the weights that take one."""
    if name not in _WEIGHTS:
        raise ConfigError(f"unknown loss weight {name!r}; choose one of {sorted(_WEIGHTS)}")
    if gamma is not None and name in ("pdae", "min_snr"):
        return _WEIGHTS[name](schedule, t, gamma)
    return _WEIGHTS[name](schedule, t)


def sample_uniform_time(
    schedule: NoiseSchedule, n: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """t ~ U{0..T-1} (discrete) or U[t_min, 1] (continuous; VE: sigma log-uniform)."""
    if schedule.discrete:
        return torch.randint(0, schedule.num_timesteps, (n,), device=device, generator=generator)
    u = torch.rand(n, device=device, generator=generator)
    return schedule.t_min + (schedule.t_max - schedule.t_min) * u


def sample_high_noise_time(
    schedule: NoiseSchedule, n: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """DRL's "focus on high noise levels": the noise-to-signal ratio r = sigma/alpha is uniform.

    r ~ U[r(t_min), r(t_max)], t = r^{-1}(r). On the VE SDE this is sigma ~ U[0.01, 50], i.e.
    t = ln(sigma/0.01)/ln(5000) with density p(t) proportional to sigma(t) (median t ~ 0.92).
    """
    ends = torch.tensor([schedule.t_min, schedule.t_max], device=device)
    if schedule.discrete:
        ends = ends.long()
    r_lo, r_hi = (schedule.sigma(ends) / schedule.alpha(ends)).double().tolist()
    u = torch.rand(n, device=device, generator=generator, dtype=torch.float64)
    return schedule.t_from_sigma_ratio(r_lo + (r_hi - r_lo) * u).to(device)


_SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "uniform": sample_uniform_time,
    "high_noise": sample_high_noise_time,
}


def sample_time(
    name: str,
    schedule: NoiseSchedule,
    n: int,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw ``n`` training times with the sampler called ``name``."""
    if name not in _SAMPLERS:
        raise ConfigError(f"unknown time sampler {name!r}; choose one of {sorted(_SAMPLERS)}")
    return _SAMPLERS[name](schedule, n, device, generator)


def check_names(weight: str, sampler: str) -> None:
    """Fail at construction time, not at the first step, on a misspelt name."""
    if weight not in _WEIGHTS:
        raise ConfigError(f"unknown loss weight {weight!r}; choose one of {sorted(_WEIGHTS)}")
    if sampler not in _SAMPLERS:
        raise ConfigError(f"unknown time sampler {sampler!r}; choose one of {sorted(_SAMPLERS)}")
