"""The forward process and the conversions between eps, x0 and score predictions.

All functions take a schedule and a batch of times ``t`` with one entry per sample.
"""

from __future__ import annotations

from torch import Tensor

from diffrep.diffusion.schedule import DiscreteSchedule, NoiseSchedule


def append_dims(coef: Tensor, like: Tensor) -> Tensor:
    """Shape a per-sample coefficient (B,) to broadcast against ``like`` (B, C, H, W)."""
    return coef.reshape(coef.shape[0], *([1] * (like.ndim - 1)))


def q_sample(schedule: NoiseSchedule, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """x_t = alpha(t) x0 + sigma(t) eps (Ho et al. eq. 4; VE: alpha = 1)."""
    return append_dims(schedule.alpha(t), x0) * x0 + append_dims(schedule.sigma(t), x0) * eps


def network_input(schedule: NoiseSchedule, x_t: Tensor, t: Tensor) -> Tensor:
    """x_t / sqrt(alpha_t^2 + sigma_t^2): unit variance for unit-variance data on any schedule.

    On a VP/DDPM schedule the factor is 1 (no change); on the VE SDE it keeps the U-Net's input
    near unit scale even at sigma = 50 (the EDM c_in preconditioning, Karras et al. 2022).
    """
    return x_t / append_dims((schedule.alpha(t) ** 2 + schedule.sigma(t) ** 2).sqrt(), x_t).to(x_t.dtype)


def x0_from_eps(schedule: NoiseSchedule, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """Invert q_sample for x0 given a noise prediction."""
    return (x_t - append_dims(schedule.sigma(t), x_t) * eps) / append_dims(schedule.alpha(t), x_t)


def eps_from_x0(schedule: NoiseSchedule, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
    """Invert q_sample for eps given a clean-image prediction."""
    return (x_t - append_dims(schedule.alpha(t), x_t) * x0) / append_dims(schedule.sigma(t), x_t)


def score_from_eps(schedule: NoiseSchedule, t: Tensor, eps: Tensor) -> Tensor:
    """grad_x log p_t(x_t | x0) = -eps / sigma(t)."""
    return -eps / append_dims(schedule.sigma(t), eps)


def eps_from_score(schedule: NoiseSchedule, t: Tensor, score: Tensor) -> Tensor:
    return -score * append_dims(schedule.sigma(t), score)


def posterior_mean_variance(
    schedule: DiscreteSchedule, x0: Tensor, x_t: Tensor, t: Tensor
) -> tuple[Tensor, Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x0) (Ho et al. eq. 6-7)."""
    beta, abar, abar_prev = schedule.betas, schedule.alphas_cumprod, schedule.alphas_cumprod_prev
    coef_x0 = schedule.gather(beta * abar_prev.sqrt() / (1 - abar), t)
    coef_xt = schedule.gather((1 - beta).sqrt() * (1 - abar_prev) / (1 - abar), t)
    mean = append_dims(coef_x0, x0) * x0 + append_dims(coef_xt, x_t) * x_t
    return mean, schedule.posterior_variance(t)


def mean_shift_eps_coefficient(schedule: DiscreteSchedule, t: Tensor) -> Tensor:
    """c_t such that shifting the posterior mean by btilde_t G equals eps_hat = eps + c_t G.

    From mu = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t):
    c_t = -sqrt(alpha_t) (1 - abar_{t-1}) / sqrt(1 - abar_t)   (PDAE, Lin et al. 2022, eq. 9).
    """
    beta, abar, abar_prev = schedule.betas, schedule.alphas_cumprod, schedule.alphas_cumprod_prev
    return schedule.gather(-(1 - beta).sqrt() * (1 - abar_prev) / (1 - abar).sqrt(), t)
