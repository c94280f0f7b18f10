"""One eps interface over the network conventions: each convention's closed form, and the refusal of an unknown one."""

import pytest
import torch
from torch import nn

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.lightning_modules.denoisers import eps_of
from diffrep.nets.ncsnpp import NCSNpp
from diffrep.nets.unet import UNet


class Echo(nn.Module):
    """Returns what it reads, so the convention's inputs and output sign are visible."""

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output = output

    def forward(self, x, time, z=None):
        return x * time.view(-1, 1, 1, 1) + (0 if z is None else z.view(-1, 1, 1, 1))


def test_each_convention_reads_its_inputs_and_returns_eps():
    schedule = ScheduleConfig(kind="ve", sigma_min=0.01, sigma_max=50.0).build()
    x_t, t, z = torch.ones(2, 1, 2, 2), torch.tensor([0.2, 0.8]), torch.tensor([1.0, 2.0])
    sigma = schedule.sigma(t).view(-1, 1, 1, 1)
    eps = eps_of(Echo("eps"))(Echo("eps"), schedule, x_t, t, z)
    # the eps convention reads the VE network input x_t / sqrt(1 + sigma^2) and the model time
    expected = x_t / (1 + sigma**2).sqrt() * schedule.model_time(t).view(-1, 1, 1, 1) + z.view(-1, 1, 1, 1)
    torch.testing.assert_close(eps, expected)
    score = eps_of(Echo("scaled_score"))(Echo("scaled_score"), schedule, x_t, t, z)
    torch.testing.assert_close(score, -(x_t * sigma + z.view(-1, 1, 1, 1)))  # x_t as it is, sigma; -output


def test_the_networks_declare_their_conventions():
    assert eps_of(NCSNpp.__new__(NCSNpp)).__name__ == "eps_from_scaled_score"
    assert eps_of(UNet.__new__(UNet)).__name__ == "eps_from_eps"
    with pytest.raises(ConfigError, match="velocity"):
        eps_of(Echo("velocity"))
