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
    torch.testing.assert_close(out, torch.ones_like(out), rtol=0, atol=1e-5)


def gaussian_eps(schedule, mean, var):
    """The exact eps of x_t for data N(mean, var I): E[eps | x_t] = sigma (x_t - alpha m) / (alpha^2 v + sigma^2)."""

    def eps_fn(x_t, t):
        alpha, sigma = append_dims(schedule.alpha(t), x_t), append_dims(schedule.sigma(t), x_t)
        return sigma * (x_t - alpha * mean) / (alpha**2 * var + sigma**2)

    return eps_fn


@pytest.mark.parametrize("grid", ["linspace", "official"])
def test_inversion_round_trip_on_gaussian_data_improves_with_more_steps(grid):
    """Unlike a single-x0 oracle (which returns x0 from any x_T, so it cannot catch a broken
    inversion), the exact eps of Gaussian data makes DDIM a discretised probability-flow ODE:
    inversion then decoding returns x0 up to a discretisation error that shrinks with the steps."""
    s = DiscreteSchedule(1000)
    mean, var = 0.2, 0.09
    x0 = mean + var**0.5 * torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    eps_fn = gaussian_eps(s, mean, var)
    errors = []
    for steps in (5, 20, 100):
        x_T = ddim_invert(eps_fn, s, x0, steps, clip_x0=False, grid=grid)
        recon = ddim_sample(eps_fn, s, x_T, steps, clip_x0=False, grid=grid)
        errors.append((recon - x0).abs().mean().item())
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.03 and errors[0] > 5 * errors[2], errors
    # The probability-flow map of N(m, v) data is affine: x_T = a m + sqrt(a^2 v + s^2) (x0 - m) / sqrt(v).
    t_T = torch.tensor([999])
    a, sig = s.alpha(t_T).item(), s.sigma(t_T).item()
    expected = a * mean + (a**2 * var + sig**2) ** 0.5 * (x0 - mean) / var**0.5
    x_T = ddim_invert(eps_fn, s, x0, 100, clip_x0=False, grid=grid)
    assert (x_T - expected).abs().mean().item() < 0.05


def test_a_one_step_sampler_returns_the_posterior_mean_of_gaussian_data():
    s = DiscreteSchedule(1000)
    x_T = torch.randn(4096, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    out = ddim_sample(gaussian_eps(s, 0.3, 0.04), s, x_T, 1, clip_x0=False)
    assert abs(out.mean().item() - 0.3) < 0.01  # E[x0 | x_T] at t = T-1 is nearly the data mean


def test_the_official_grid_makes_n_inversion_calls_and_ours_n_minus_1():
    s = DiscreteSchedule(1000)
    seen = {"official": [], "linspace": []}
    for grid, calls in seen.items():
        ddim_invert(lambda x, t, c=calls: c.append(int(t[0])) or torch.zeros_like(x), s, torch.zeros(1, 1, 2, 2), 10,
                    grid=grid)
    assert seen["official"] == [0, 99, 199, 299, 399, 499, 599, 699, 799, 899]
    assert len(seen["linspace"]) == 9 and seen["linspace"][0] == 0
