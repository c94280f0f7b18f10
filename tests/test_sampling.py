import pytest
import torch

from diffrep.diffusion.process import append_dims
from diffrep.diffusion.sampling import ddim_invert, ddim_sample, ddpm_sample
from diffrep.diffusion.schedule import DiscreteSchedule, VESchedule


def oracle(schedule, x0):
    """The exact eps of x_t when the data is the single image batch x0."""
    return lambda x_t, t: (x_t - append_dims(schedule.alpha(t), x_t) * x0) / append_dims(schedule.sigma(t), x_t)


@pytest.mark.parametrize("schedule", [DiscreteSchedule(1000), VESchedule()], ids=["ddpm", "ve"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_an_exact_oracle_returns_x0(schedule, eta):
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    x_T = torch.randn_like(x0) * schedule.sigma(
        torch.tensor([schedule.t_max]).to(torch.long if schedule.discrete else torch.float32)
    )
    out = ddim_sample(oracle(schedule, x0), schedule, x_T, num_steps=10, eta=eta)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)


def test_ddim_inversion_with_an_oracle_lands_on_the_forward_process():
    s = DiscreteSchedule(1000)
    x0 = torch.rand(2, 1, 8, 8) * 2 - 1
    eps_fn = oracle(s, x0)
    x_T = ddim_invert(eps_fn, s, x0, num_steps=20)
    # With an exact x0, every inverted state is alpha_t x0 + sigma_t eps for one fixed eps.
    t_T = torch.full((2,), 999)
    torch.testing.assert_close(
        x_T, append_dims(s.alpha(t_T), x0) * x0 + append_dims(s.sigma(t_T), x0) * eps_fn(x_T, t_T)
    )
    torch.testing.assert_close(ddim_sample(eps_fn, s, x_T, num_steps=20), x0, rtol=0, atol=1e-4)


def test_ddpm_with_an_exact_oracle_returns_x0():
    s = DiscreteSchedule(50)
    x0 = torch.rand(2, 1, 4, 4) * 2 - 1
    out = ddpm_sample(oracle(s, x0), s, torch.randn_like(x0), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)


def test_ddpm_refuses_a_continuous_schedule():
    with pytest.raises(ValueError, match="discrete"):
        ddpm_sample(lambda x, t: x, VESchedule(), torch.zeros(1, 1, 2, 2))


def test_clipping_keeps_predictions_in_range():
    s = DiscreteSchedule(1000)
    x0 = torch.full((1, 1, 4, 4), 3.0)  # outside [-1, 1]: the clamp must pull the output to 1
    out = ddim_sample(oracle(s, x0), s, torch.randn(1, 1, 4, 4), num_steps=5)
    assert out.max().item() <= 1.0 + 1e-5
