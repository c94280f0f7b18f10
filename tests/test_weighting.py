import math

import numpy as np
import pytest
import torch

from diffrep.diffusion.schedule import DiscreteSchedule, VESchedule
from diffrep.diffusion.weighting import check_names, loss_weight, sample_time


def test_pdae_weight_equals_both_forms_of_eq_11():
    s = DiscreteSchedule(1000)
    t = torch.arange(0, 1000, 111)
    snr = s.snr(t).double()
    gamma = 0.1
    product = (1 / (1 + snr)) ** (1 - gamma) * (snr / (1 + snr)) ** gamma
    torch.testing.assert_close(loss_weight("pdae", s, t, gamma).double(), product, rtol=1e-5, atol=0)
    torch.testing.assert_close(loss_weight("pdae", s, t, 0.0).double(), 1 / (1 + snr), rtol=1e-5, atol=0)
    # The weight is largest in the middle of the chain and small at both ends.
    w = loss_weight("pdae", s, torch.arange(1000), gamma)
    assert 50 < int(w.argmax()) < 950


def test_sigma2_score_weight_is_unit_weight_on_eps():
    s = VESchedule()
    t = torch.rand(100)
    eps, eps_hat = torch.randn(100), torch.randn(100)
    sigma = s.sigma(t)
    score_loss = sigma**2 * ((-eps_hat / sigma) - (-eps / sigma)) ** 2
    torch.testing.assert_close(score_loss, loss_weight("sigma2", s, t) * (eps - eps_hat) ** 2, rtol=1e-4, atol=1e-6)


def test_uniform_discrete_time_covers_all_steps():
    t = sample_time("uniform", DiscreteSchedule(10), 20000, "cpu")
    counts = torch.bincount(t, minlength=10).float()
    assert t.dtype == torch.long and counts.min() > 1800 and counts.max() < 2200


def test_high_noise_sampler_matches_its_documented_density():
    """On the VE SDE, t = ln(sigma/0.01)/ln 5000 with sigma ~ U[0.01, 50]: CDF (sigma(t)-0.01)/49.99."""
    s = VESchedule(0.01, 50.0)
    t = sample_time("high_noise", s, 50000, "cpu", torch.Generator().manual_seed(0)).numpy()
    grid = np.linspace(0.05, 0.99, 30)
    cdf = (0.01 * 5000**grid - 0.01) / 49.99
    empirical = (t[None, :] <= grid[:, None]).mean(1)
    assert np.abs(empirical - cdf).max() < 0.01  # Kolmogorov-Smirnov distance
    assert np.median(t) == pytest.approx(math.log(25.005 / 0.01) / math.log(5000), abs=0.01)


def test_high_noise_sampler_on_discrete_schedule_is_uniform_in_noise_ratio():
    s = DiscreteSchedule(1000)
    t = sample_time("high_noise", s, 20000, "cpu", torch.Generator().manual_seed(0))
    ratio = (s.sigma(t) / s.alpha(t)).numpy()
    hi = (s.sigma(torch.tensor([999])) / s.alpha(torch.tensor([999]))).item()
    assert np.mean(ratio < hi / 2) == pytest.approx(0.5, abs=0.02)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="loss weight"):
        check_names("snr2", "uniform")
    with pytest.raises(ValueError, match="time sampler"):
        check_names("uniform", "lognormal")
