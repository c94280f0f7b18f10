import torch

from diffrep.diffusion.process import (
    eps_from_score,
    eps_from_x0,
    q_sample,
    score_from_eps,
    x0_from_eps,
)
from diffrep.diffusion.schedule import DiscreteSchedule, VESchedule


def test_q_sample_has_the_forward_marginal_moments():
    s = DiscreteSchedule(1000)
    x0 = torch.full((20000, 1, 1, 1), 0.7)
    t = torch.full((20000,), 300)
    x_t = q_sample(s, x0, t, torch.randn_like(x0))
    alpha, sigma = s.alpha(t[:1]).item(), s.sigma(t[:1]).item()
    assert abs(x_t.mean().item() - alpha * 0.7) < 4 * sigma / 20000**0.5
    assert abs(x_t.std().item() - sigma) < 0.02 * sigma


def test_conversions_round_trip_on_both_schedules():
    for s, t in ((DiscreteSchedule(1000), torch.tensor([5, 400, 990])), (VESchedule(), torch.tensor([0.1, 0.5, 0.9]))):
        x0, eps = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
        x_t = q_sample(s, x0, t, eps)
        torch.testing.assert_close(x0_from_eps(s, x_t, t, eps), x0, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(eps_from_x0(s, x_t, t, x0), eps, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(eps_from_score(s, t, score_from_eps(s, t, eps)), eps)
