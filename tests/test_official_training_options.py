"""The official DRL training-step options (score_sde's EMA ramp and warm-up from lr 0), against
their closed forms, and the EMA count surviving a checkpoint."""

import pytest
import torch
from conftest import tiny_unet_config

from diffrep.ema import EMA
from diffrep.lightning_modules import DRL


def test_the_ema_ramp_follows_min_decay_and_the_update_count():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.999, ramp=True)
    expected = 0.0
    for n in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(float(n))
        ema.update()
        decay = min(0.999, (1 + n) / (10 + n))
        expected = decay * expected + (1 - decay) * n
        assert ema.shadow("weight").item() == pytest.approx(expected, rel=1e-6)
    assert int(ema.num_updates) == 5
    resumed = EMA(model, decay=0.999, ramp=True)
    resumed.load_state_dict(ema.state_dict())
    assert resumed.current_decay() == pytest.approx(7 / 16)  # the sixth update's (1 + 6) / (10 + 6)
    assert EMA(model, decay=0.999).current_decay() == 0.999  # no ramp: the decay from the first step
    assert "num_updates" not in EMA(model, decay=0.999).state_dict()  # older checkpoints still load


@pytest.mark.parametrize("from_zero, first", [(True, 0.0), (False, 0.25)])
def test_the_warm_up_starts_where_its_option_says(from_zero, first):
    model = DRL(
        optimisation={"lr": 1.0, "warmup_steps": 4, "warmup_from_zero": from_zero},
        ema={"decay": None},
        network=tiny_unet_config(),
    )
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.0, 0.25, 0.5, 0.75, 1.0, 1.0] if from_zero else [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert rates == pytest.approx(expected) and rates[0] == first
