"""The optimiser settings: warm-up closed forms, fused Adam, clipping, and a misspelt optimiser."""

import pytest
import torch

from diffrep.errors import ConfigError
from diffrep.lightning_modules.optimisation import OptimiserSettings, clip_gradients


def test_the_two_warm_up_conventions():
    assert [OptimiserSettings(warmup_steps=4).warmup_factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]
    from_zero = OptimiserSettings(warmup_steps=4, warmup_from_zero=True)  # score_sde, Diff-AE
    assert [from_zero.warmup_factor(s) for s in range(6)] == [0, 0.25, 0.5, 0.75, 1, 1]


def test_build_gives_fused_adam_with_a_per_step_schedule_and_a_bare_optimiser_without_warm_up():
    params = [torch.nn.Parameter(torch.zeros(3))]
    built = OptimiserSettings("adamw", lr=0.1, warmup_steps=2).build(params, fused=True)
    optimizer = built["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    assert built["lr_scheduler"]["interval"] == "step" and optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    assert isinstance(OptimiserSettings(lr=0.1).build(params, fused=False), torch.optim.Adam)


def test_clipping_by_norm_and_by_value():
    p = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([p], lr=0.1)
    p.grad = torch.tensor([3.0, 4.0])
    clip_gradients(optimizer, 1.0, "norm")
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8]))
    p.grad = torch.tensor([3.0, -4.0])
    clip_gradients(optimizer, 2.0, "value")
    torch.testing.assert_close(p.grad, torch.tensor([2.0, -2.0]))
    clip_gradients(optimizer, None, "norm")  # no clipping asked for
    torch.testing.assert_close(p.grad, torch.tensor([2.0, -2.0]))


def test_a_misspelt_optimiser_is_one_line():
    with pytest.raises(ConfigError, match="'adam', 'adamw' or your own"):
        OptimiserSettings("lamb")
