"""The denoising objective as one object: closed forms for each of its settings and the papers' presets."""

import pytest
import torch

from diffrep.diffusion.objective import PRESETS, DenoisingObjective
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError


def zero_predictor_loss(objective, schedule, x0, t):
    """The loss of predicting eps = 0, and the eps drawn, from the same generator state."""
    torch.manual_seed(1)
    loss, per_sample = objective(schedule, x0, lambda x_t, tt: torch.zeros_like(x_t), t)
    torch.manual_seed(1)
    eps = torch.randn_like(x0)
    return loss, per_sample, eps


def test_each_setting_is_its_closed_form():
    schedule = ScheduleConfig(kind="discrete", num_timesteps=1000).build()
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    t = torch.tensor([10, 200, 500, 900])
    loss, per_sample, eps = zero_predictor_loss(DenoisingObjective(), schedule, x0, t)
    torch.testing.assert_close(per_sample, eps.pow(2).flatten(1).mean(1))
    torch.testing.assert_close(loss, per_sample.mean())
    l1, per_l1, _ = zero_predictor_loss(DenoisingObjective(norm="l1"), schedule, x0, t)
    torch.testing.assert_close(per_l1, eps.abs().flatten(1).mean(1))
    pdae, _, _ = zero_predictor_loss(PRESETS["pdae"], schedule, x0, t)
    snr = schedule.snr(t)
    torch.testing.assert_close(pdae, (snr**0.1 / (1 + snr) * per_sample).mean())
    half_sum, _, _ = zero_predictor_loss(DenoisingObjective(reduction="half_sum"), schedule, x0, t)
    torch.testing.assert_close(half_sum, 0.5 * eps.pow(2).flatten(1).sum(1).mean())


def test_a_predictor_that_knows_x0_has_zero_loss():
    schedule = ScheduleConfig(kind="ve").build()
    x0 = torch.rand(3, 2, 4, 4)

    def oracle(x_t, t):  # x_t = alpha x0 + sigma eps, inverted
        return (x_t - schedule.alpha(t).view(-1, 1, 1, 1) * x0) / schedule.sigma(t).view(-1, 1, 1, 1)

    loss, _ = PRESETS["drl"](schedule, x0, oracle, torch.tensor([0.1, 0.5, 0.9]))
    assert loss.abs() < 1e-5


def test_regularisers_are_scaled_to_the_half_sum_they_are_stated_against():
    x0 = torch.zeros(2, 3, 8, 8)
    assert DenoisingObjective(reduction="half_sum").regulariser_scale(x0) == 1.0
    assert DenoisingObjective().regulariser_scale(x0) == 2.0 / 192


@pytest.mark.parametrize("kwargs, name", [({"weighting": "snr"}, "loss weight"), ({"time_sampler": "low"}, "sampler"),
                                           ({"norm": "l3"}, "norm"), ({"reduction": "sum"}, "reduction")])
def test_a_misspelt_setting_is_refused_when_built(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        DenoisingObjective(**kwargs)
