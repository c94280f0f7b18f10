"""The official DRL code's score-SDE samplers (diffrep.diffusion.sde_sampling) against closed forms:
for data N(0, s0^2) the VE marginal is N(0, s0^2 + sigma^2), whose exact score makes every sampler
end at std s0; and DRL's ``sampler`` option. Equality with score_sde's sampling.py on shared weights
is benchmarks/official_parity.py --drl."""

from __future__ import annotations

import pytest
import torch
from conftest import make_drl

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.diffusion.sde_sampling import ode_sample, pc_sample
from diffrep.errors import ConfigError

S0 = 0.5
VE = ScheduleConfig(kind="ve", sigma_min=0.01, sigma_max=50.0).build()


def exact_eps(x, t):
    sigma = 0.01 * 5000.0 ** t[:, None, None, None]
    return sigma * x / (S0**2 + sigma**2)  # eps = -sigma * score of N(0, s0^2 + sigma^2)


@pytest.mark.parametrize("probability_flow", [False, True])
@pytest.mark.parametrize("corrector_steps", [0, 1])
def test_the_pc_sampler_draws_from_the_data_distribution(probability_flow, corrector_steps):
    """Each predictor alone (corrector_steps 0) and with the Langevin corrector."""
    torch.manual_seed(0)
    x_T = torch.randn(1000, 1, 2, 2) * 50.0
    x = pc_sample(exact_eps, VE, x_T, num_steps=300, probability_flow=probability_flow,
                  corrector_steps=corrector_steps)
    # the predictors alone carry the ladder's discretisation error (std 0.511 and 0.527 at 300 levels)
    assert abs(x.std().item() - S0) < (0.03 if corrector_steps else 0.08) * S0, x.std()
    assert abs(x.mean().item()) < 0.05


def test_the_probability_flow_ode_maps_the_prior_onto_the_data_distribution():
    torch.manual_seed(0)
    x_T = torch.randn(1000, 1, 2, 2) * 50.0
    x, evaluations = ode_sample(exact_eps, VE, x_T)
    # the flow of N(0, s0^2 + sigma^2) is linear: x_0 = x_T * s0 / sqrt(s0^2 + sigma_max^2), up to t = eps
    expected = x_T * (S0**2 + (0.01 * 5000.0**1e-5) ** 2) ** 0.5 / (S0**2 + 50.0**2) ** 0.5
    torch.testing.assert_close(x, expected, rtol=1e-3, atol=1e-3)
    assert 10 < evaluations < 1000


def test_the_samplers_refuse_other_schedules_and_drl_checks_its_sampler():
    with pytest.raises(ConfigError, match="VE"):
        pc_sample(exact_eps, ScheduleConfig().build(), torch.zeros(1, 1, 2, 2), 10)
    with pytest.raises(ConfigError, match="sampler"):
        make_drl(sampling={"sampler": "euler"})
    with pytest.raises(ConfigError, match="kind ve"):
        make_drl(schedule=dict(kind="discrete", num_timesteps=100), sampling={"sampler": "pc"})


def test_drl_generates_with_the_pc_sampler():
    model = make_drl(sampling={"sampler": "pc"}).eval()
    with torch.no_grad():  # an untrained net predicts eps = 0 (zero output conv): the corrector divides by |score|
        for p in model.unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    z = torch.randn(2, 8)
    torch.manual_seed(1)
    x = model.generate(z, model.noise(2), num_steps=5)
    assert x.shape == (2, 1, 16, 16) and torch.isfinite(x).all()
    torch.manual_seed(1)
    again = pc_sample(model.code_eps_fn(lambda t: z), model.schedule, model.noise(2), 5)
    torch.testing.assert_close(x, again, rtol=0, atol=0)
