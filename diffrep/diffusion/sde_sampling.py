"""The score-SDE samplers DRL's official code uses on the VE SDE (Song et al. 2021; score_sde's
``sampling.py`` as korabs-x/representation_score_based ships it), for any ``eps_fn``.

- ``pc_sample``: predictor-corrector. N levels t_i = linspace(1, eps, N) and the SMLD ladder
  sigma_i = exp(linspace(log sigma_min, log sigma_max, N)); at each level one Langevin corrector
  step (step size 2 (snr ||n|| / ||score||)^2, norms averaged over the batch) and then the
  reverse-diffusion predictor x <- x + G^2 score + G n with G^2 = sigma_i^2 - sigma_{i-1}^2 (half the
  drift and no noise with ``probability_flow``). Returns the last predictor mean (``denoise``).
  The official CIFAR-10 settings: N = 1000, snr 0.16, one corrector step, eps 1e-5.
- ``ode_sample``: the probability-flow ODE dx/dt = -1/2 g(t)^2 score, g^2 = d sigma^2 / dt, from
  t = 1 to eps by scipy's adaptive RK45 (rtol = atol = 1e-5), optionally one predictor mean at eps.

The score is -eps / sigma(t). The random draws come from torch's global stream in the official
order (so a seeded run reproduces the official one), or from ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from diffrep.diffusion.schedule import VESchedule
from diffrep.errors import ConfigError

EpsFn = Callable[[Tensor, Tensor], Tensor]


def _check(schedule: object) -> VESchedule:
    if not isinstance(schedule, VESchedule):
        raise ConfigError(f"the score-SDE samplers (pc, ode) are DRL's, for the VE schedule; got "
                          f"{type(schedule).__name__} (use ddim there)")
    return schedule


def _score(eps_fn: EpsFn, schedule: VESchedule, x: Tensor, t: Tensor) -> Tensor:
    sigma = schedule.sigma_min * (schedule.sigma_max / schedule.sigma_min) ** t
    return -eps_fn(x, t) / sigma.to(x.dtype)[:, None, None, None]


def _normal(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _predictor(eps_fn: EpsFn, schedule: VESchedule, x: Tensor, t: Tensor, ladder: Tensor,
               probability_flow: bool, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """score_sde's ReverseDiffusionPredictor on the VE SDE's SMLD discretisation."""
    index = (t * (len(ladder) - 1)).long()
    sigma = ladder[index]
    below = torch.where(index == 0, torch.zeros_like(t), ladder[(index - 1).clamp(min=0)])
    g2 = (sigma**2 - below**2)[:, None, None, None]
    score = _score(eps_fn, schedule, x, t)
    noise = _normal(x, generator)  # drawn with the probability flow too, as the official predictor does
    mean = x + g2 * score * (0.5 if probability_flow else 1.0)
    return (mean if probability_flow else mean + g2.sqrt() * noise), mean


def _langevin(eps_fn: EpsFn, schedule: VESchedule, x: Tensor, t: Tensor, snr: float, steps: int,
              generator: torch.Generator | None) -> Tensor:
    """score_sde's LangevinCorrector (alpha = 1 on the VE SDE)."""
    for _ in range(steps):
        grad = _score(eps_fn, schedule, x, t)
        noise = _normal(x, generator)
        grad_norm = grad.flatten(1).norm(dim=-1).mean()
        noise_norm = noise.flatten(1).norm(dim=-1).mean()
        step = (snr * noise_norm / grad_norm) ** 2 * 2
        x = x + step * grad + (2 * step).sqrt() * noise
    return x


@torch.no_grad()
def pc_sample(eps_fn: EpsFn, schedule: VESchedule, x_T: Tensor, num_steps: int = 1000, snr: float = 0.16,
              corrector_steps: int = 1, probability_flow: bool = False, denoise: bool = True, eps: float = 1e-5,
              generator: torch.Generator | None = None) -> Tensor:
    """Predictor-corrector sampling from x_T ~ N(0, sigma_max^2) (module docstring)."""
    schedule = _check(schedule)
    if num_steps < 2:
        raise ConfigError(f"the PC sampler needs at least 2 levels, got num_steps={num_steps}")
    levels = torch.linspace(1.0, eps, num_steps, device=x_T.device)
    ladder = torch.exp(torch.linspace(math.log(schedule.sigma_min), math.log(schedule.sigma_max), num_steps,
                                      device=x_T.device))
    x, mean = x_T, x_T
    for level in levels:
        t = torch.ones(x.shape[0], device=x.device) * level
        x = _langevin(eps_fn, schedule, x, t, snr, corrector_steps, generator)
        x, mean = _predictor(eps_fn, schedule, x, t, ladder, probability_flow, generator)
    return mean if denoise else x


@torch.no_grad()
def ode_sample(eps_fn: EpsFn, schedule: VESchedule, x_T: Tensor, rtol: float = 1e-5, atol: float = 1e-5,
               method: str = "RK45", eps: float = 1e-5, denoise: bool = False,
               num_steps: int = 1000) -> tuple[Tensor, int]:
    """The probability-flow ODE by scipy's ``solve_ivp``; returns (x_0, network evaluations).
    ``num_steps`` sizes the SMLD ladder of the optional denoising step only."""
    from scipy import integrate

    schedule = _check(schedule)
    shape, device = x_T.shape, x_T.device
    log_ratio = math.log(schedule.sigma_max) - math.log(schedule.sigma_min)

    def drift(t: float, flat: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(flat.reshape(shape)).to(device).float()
        vec_t = torch.ones(shape[0], device=device) * t
        sigma = schedule.sigma_min * (schedule.sigma_max / schedule.sigma_min) ** vec_t
        g2 = (sigma * math.sqrt(2 * log_ratio)) ** 2
        return (-0.5 * g2[:, None, None, None] * _score(eps_fn, schedule, x, vec_t)).cpu().numpy().reshape(-1)

    solution = integrate.solve_ivp(drift, (1.0, eps), x_T.cpu().numpy().reshape(-1), rtol=rtol, atol=atol,
                                   method=method)
    x = torch.tensor(solution.y[:, -1]).reshape(shape).to(device).float()
    if denoise:
        ladder = torch.exp(torch.linspace(math.log(schedule.sigma_min), math.log(schedule.sigma_max), num_steps,
                                          device=device))
        _, x = _predictor(eps_fn, schedule, x, torch.full((shape[0],), eps, device=device), ladder, False, None)
    return x, int(solution.nfev)


def ode_generate(eps_fn: EpsFn, schedule: VESchedule, x_T: Tensor, num_steps: int = 1000) -> Tensor:
    """``ode_sample``'s x_0 alone, with the predictor-corrector sampler's call signature."""
    return ode_sample(eps_fn, schedule, x_T, num_steps=num_steps)[0]


#: generation on the VE SDE beside DDIM, by name: the official code's predictor-corrector and probability-flow ODE
SDE_SAMPLERS: dict[str, Callable[..., Tensor]] = {"pc": pc_sample, "ode": ode_generate}
