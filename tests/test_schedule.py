import math

import numpy as np
import pytest
import torch

from diffrep.diffusion.process import mean_shift_eps_coefficient, posterior_mean_variance
from diffrep.diffusion.schedule import DiscreteSchedule, ScheduleConfig, VESchedule, VPSchedule


def test_linear_schedule_matches_closed_form():
    s = DiscreteSchedule(1000, "linear", 1e-4, 0.02)
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1 - betas)
    t = torch.tensor([0, 1, 10, 500, 999])
    np.testing.assert_allclose(s.alpha(t).numpy(), np.sqrt(abar[t.numpy()]), rtol=1e-6)
    np.testing.assert_allclose(s.sigma(t).numpy(), np.sqrt(1 - abar[t.numpy()]), rtol=1e-6)
    np.testing.assert_allclose(s.snr(t).numpy(), (abar / (1 - abar))[t.numpy()], rtol=1e-5)
    assert s.alpha(torch.tensor([999])).item() == pytest.approx(0.00635, abs=2e-5)  # sqrt(abar_T), Ho et al.


def test_cosine_schedule_follows_its_squared_cosine():
    s = DiscreteSchedule(1000, "cosine")
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for step in (0, 100, 500, 900):
        assert s.alpha(torch.tensor([step])).item() ** 2 == pytest.approx(f((step + 1) / 1000) / f(0), rel=1e-4)


def test_posterior_variance_and_mean_match_ddpm():
    s = DiscreteSchedule(1000)
    t = torch.tensor([1, 50, 700])
    beta = s.betas[t]  # float64 tables: the float32 outputs are checked against them
    abar, abar_prev = s.alphas_cumprod[t], s.alphas_cumprod[t - 1]
    expected_var = beta * (1 - abar_prev) / (1 - abar)
    x0, eps = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    x_t = s.alpha(t)[:, None, None, None] * x0 + s.sigma(t)[:, None, None, None] * eps
    mean, var = posterior_mean_variance(s, x0, x_t, t)
    torch.testing.assert_close(var.double(), expected_var, rtol=1e-5, atol=0)
    # The same mean written through eps (Ho et al. eq. 11).
    alpha = (1 - beta).float()[:, None, None, None]
    via_eps = (x_t - (beta / (1 - abar).sqrt()).float()[:, None, None, None] * eps) / alpha.sqrt()
    torch.testing.assert_close(mean, via_eps, rtol=1e-4, atol=1e-5)


def test_pdae_shift_coefficient_is_btilde_times_mean_to_eps_factor():
    s = DiscreteSchedule(1000)
    t = torch.arange(1, 1000, 97)
    beta, abar, abar_prev = s.betas[t], s.alphas_cumprod[t], s.alphas_cumprod[t - 1]
    btilde = beta * (1 - abar_prev) / (1 - abar)
    expected = -btilde * (1 - beta).sqrt() * (1 - abar).sqrt() / beta  # btilde * d(eps)/d(mu)
    torch.testing.assert_close(mean_shift_eps_coefficient(s, t).double(), expected, rtol=1e-5, atol=0)


def test_ve_schedule_endpoints_and_inverse():
    s = VESchedule(0.01, 50.0)
    assert s.sigma(torch.tensor([0.0])).item() == pytest.approx(0.01)
    assert s.sigma(torch.tensor([1.0])).item() == pytest.approx(50.0, rel=1e-6)
    assert s.sigma(torch.tensor([0.5])).item() == pytest.approx(0.01 * 5000**0.5, rel=1e-6)
    t = torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(s.t_from_sigma_ratio(s.sigma(t)), t)
    assert torch.all(s.alpha(t) == 1)


def test_vp_schedule_preserves_variance_and_inverts():
    s = VPSchedule(0.1, 20.0)
    t = torch.tensor([0.05, 0.3, 0.99])
    torch.testing.assert_close(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones(3))
    log_alpha = -0.25 * t.double() ** 2 * 19.9 - 0.5 * t.double() * 0.1
    torch.testing.assert_close(s.alpha(t).double(), log_alpha.exp(), rtol=1e-6, atol=0)
    torch.testing.assert_close(s.t_from_sigma_ratio(s.sigma(t) / s.alpha(t)), t, rtol=1e-4, atol=1e-5)


def test_sampling_times_span_the_schedule():
    assert DiscreteSchedule(1000).sampling_times(5).tolist() == [999, 749, 500, 250, 0]
    times = VESchedule().sampling_times(3)
    assert times[0].item() == 1.0 and times[-1].item() == pytest.approx(1e-5)
    with pytest.raises(ValueError):
        DiscreteSchedule(1000).sampling_times(0)
    with pytest.raises(ValueError, match="timestep_grid"):
        DiscreteSchedule(1000).sampling_times(5, "uniform")


def test_one_step_sampling_starts_from_pure_noise():
    """A one-step sampler must call the network at t = T-1, not denoise pure noise at t = 0."""
    assert DiscreteSchedule(1000).sampling_times(1).tolist() == [999]
    assert DiscreteSchedule(1000).sampling_times(1, "official").tolist() == [999]


def test_official_grid_calls_the_network_where_the_official_samplers_do():
    """ckczzj/PDAE and phizaz/diffae: map = int(linspace(0, T-1, N+1)), calls at map[N..1]."""
    s = DiscreteSchedule(1000)
    assert s.sampling_times(10, "official").tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    calls = s.sampling_times(100, "official").tolist()
    assert len(calls) == 100 and calls[:3] == [999, 989, 979] and calls[-3:] == [29, 19, 9]
    levels, ends_clean = s.ddim_levels(100, "official")
    assert levels[-1].item() == 0 and not ends_clean  # the loop stops at x_0 of the chain
    ours = s.sampling_times(100).tolist()  # linspace: 100 calls from 999 down to 0, then the clean image
    assert len(ours) == 100 and ours[0] == 999 and ours[-1] == 0 and s.ddim_levels(100)[1]


def test_schedule_config_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown schedule kind"):
        ScheduleConfig(kind="edm").build()
    with pytest.raises(ValueError, match="beta_schedule"):
        DiscreteSchedule(10, "quadratic")
