"""DDIM sampling and inversion, and DDPM ancestral sampling, for any schedule.

Every loop takes an ``eps_fn(x_t, t) -> eps`` callable. That is the single hook through which
a method changes the model: PDAE wraps the frozen DPM and adds its mean shift, DRL and Diff-AE
close over the code z. The samplers never know which method they serve.

DDIM (Song et al. 2021, eq. 12) in alpha/sigma form, from time t to the next time s:
    x0_hat = (x_t - sigma_t eps) / alpha_t       (clamped to [-1, 1] if asked; eps recomputed)
    x_s    = alpha_s x0_hat + sqrt(sigma_s^2 - v) eps + sqrt(v) n,
    v      = eta^2 (sigma_s^2 / sigma_t^2) (sigma_t^2 - (alpha_t / alpha_s)^2 sigma_s^2).
Step grids are ``NoiseSchedule.ddim_levels``: diffrep's ``linspace`` (the last step lands on the
clean image), the ``official`` PDAE grid (stops at x_0 of the DDPM chain) or Diff-AE's ``diffae``
respacing (whose inversion ends at alpha = 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from diffrep.diffusion.process import append_dims, eps_from_x0, posterior_mean_variance, x0_from_eps
from diffrep.diffusion.schedule import DiscreteSchedule, NoiseSchedule
from diffrep.errors import ConfigError

EpsFn = Callable[[Tensor, Tensor], Tensor]
# What the x0 prediction is clamped to: True for images in [-1, 1], False for no clamp, or per-channel
# (low, high) tensors broadcasting against x (data standardised per channel, DRL's official CIFAR-10).
ClipX0 = bool | tuple[Tensor, Tensor]


def _time_batch(schedule: NoiseSchedule, value: Tensor, like: Tensor) -> Tensor:
    dtype = torch.long if schedule.discrete else torch.float32
    return torch.full((like.shape[0],), float(value), device=like.device).to(dtype)


def _predict(
    eps_fn: EpsFn, schedule: NoiseSchedule, x_t: Tensor, t: Tensor, clip_x0: ClipX0
) -> tuple[Tensor, Tensor]:
    """Return (x0_hat, eps_hat); with clipping, eps_hat is recomputed from the clamped x0_hat."""
    eps = eps_fn(x_t, t)
    x0 = x0_from_eps(schedule, x_t, t, eps)
    if clip_x0 is not False:
        low, high = (-1.0, 1.0) if clip_x0 is True else clip_x0
        x0 = x0.clamp(low, high)
        eps = eps_from_x0(schedule, x_t, t, x0)
    return x0, eps


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    x_T: Tensor,
    num_steps: int = 100,
    eta: float = 0.0,
    clip_x0: ClipX0 = True,
    generator: torch.Generator | None = None,
    grid: str = "linspace",
) -> Tensor:
    """Run DDIM from x_T at t_max down the ``grid``'s levels with ``num_steps`` network calls
    (``NoiseSchedule.ddim_levels``: ``linspace`` ends on the clean image, ``official`` at t = 0)."""
    levels, ends_clean = schedule.ddim_levels(num_steps, grid)
    calls = len(levels) if ends_clean else len(levels) - 1
    x = x_T
    for i in range(calls):
        t = _time_batch(schedule, levels[i], x)
        x0, eps = _predict(eps_fn, schedule, x, t, clip_x0)
        alpha_t, sigma_t = schedule.alpha(t), schedule.sigma(t)
        to_clean = i + 1 == len(levels)
        if to_clean:
            alpha_s, sigma_s = torch.ones_like(alpha_t), torch.zeros_like(sigma_t)
        else:
            s = _time_batch(schedule, levels[i + 1], x)
            alpha_s, sigma_s = schedule.alpha(s), schedule.sigma(s)
        var = eta**2 * (sigma_s / sigma_t) ** 2 * (sigma_t**2 - (alpha_t / alpha_s * sigma_s) ** 2)
        var = var.clamp(min=0.0)
        x = append_dims(alpha_s, x) * x0 + append_dims((sigma_s**2 - var).clamp(min=0).sqrt(), x) * eps
        if eta > 0 and not to_clean:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + append_dims(var.sqrt(), x) * noise
    return x


@torch.no_grad()
def ddim_invert(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    x0: Tensor,
    num_steps: int = 100,
    clip_x0: ClipX0 = True,
    grid: str = "linspace",
) -> Tensor:
    """Deterministic DDIM inversion x0 -> x_T up the ``grid``'s levels (those ``ddim_sample`` walks
    down; the image is taken as x at the lowest level, t = 0, as in the official code).

    Each step uses eps evaluated at the current (lower) time and moves to the next higher time,
    the standard first-order approximation (Song et al. 2021, eq. 13).
    """
    levels = schedule.ddim_levels(num_steps, grid)[0].flip(0)
    x = x0
    for i in range(len(levels) - 1):
        t = _time_batch(schedule, levels[i], x)
        s = _time_batch(schedule, levels[i + 1], x)
        x0_hat, eps = _predict(eps_fn, schedule, x, t, clip_x0)
        x = append_dims(schedule.alpha(s), x) * x0_hat + append_dims(schedule.sigma(s), x) * eps
    if grid == "diffae":  # one more call, from the top level to alpha = 0, sigma = 1: x_T = eps
        _, x = _predict(eps_fn, schedule, x, _time_batch(schedule, levels[-1], x), clip_x0)
    return x


@torch.no_grad()
def ddpm_sample(
    eps_fn: EpsFn,
    schedule: DiscreteSchedule,
    x_T: Tensor,
    clip_x0: ClipX0 = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Ancestral sampling over all T steps with the posterior variance btilde_t (Ho et al. Alg. 2)."""
    if not schedule.discrete:
        raise ConfigError("ddpm_sample needs a discrete schedule; use ddim_sample with eta=1 instead")
    x = x_T
    for value in range(schedule.num_timesteps - 1, -1, -1):
        t = torch.full((x.shape[0],), value, device=x.device, dtype=torch.long)
        x0, _ = _predict(eps_fn, schedule, x, t, clip_x0)
        mean, var = posterior_mean_variance(schedule, x0, x, t)
        if value == 0:
            return mean
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = mean + append_dims(var.sqrt(), x) * noise
    return x
