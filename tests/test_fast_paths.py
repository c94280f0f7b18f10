"""GPU speed options give the same loss as the plain path (on CPU always; on CUDA when present)."""

import pytest
import torch
from conftest import tiny_unet_config

from diffrep.lightning_modules import DPM, DRL

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def loss_with(model, x0, t, seed=0, autocast=False):
    torch.manual_seed(seed)
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=autocast):
        return model.loss(x0, t).float()


def models(device, **kwargs):
    torch.manual_seed(0)
    dpm = DPM(unet=tiny_unet_config(), ema_decay=None, **kwargs)
    torch.manual_seed(0)
    drl = DRL(unet=tiny_unet_config(), encoder_kwargs={"channels": (16, 32), "num_groups": 8, "num_heads": 1},
              latent_dim=8, ema_decay=None, **kwargs)
    return [dpm.to(device), drl.to(device)]


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_loss_matches_fp32(device):
    x0 = torch.rand(16, 1, 16, 16, device=device) * 2 - 1
    for model in models(device):
        t = model.sample_time(16, torch.device(device))
        fp32, bf16 = loss_with(model, x0, t), loss_with(model, x0, t, autocast=True)
        # bf16 keeps 8 mantissa bits: the mean loss agrees to a few per cent.
        torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_gives_the_same_loss(device):
    x0 = torch.rand(8, 1, 16, 16, device=device) * 2 - 1
    for plain, fast in zip(models(device), models(device, channels_last=True), strict=True):
        fast.load_state_dict(plain.state_dict())
        t = plain.sample_time(8, torch.device(device))
        torch.testing.assert_close(loss_with(fast, x0, t), loss_with(plain, x0, t), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_unet_gives_the_same_loss_and_state_dict_keys(device):
    """Forward only, on a one-level U-Net: what is checked is that ``compile`` keeps the loss and
    the checkpoint keys (inductor's compile time grows with the graph, and the backward doubles it)."""
    x0 = torch.rand(8, 1, 16, 16, device=device) * 2 - 1
    config = tiny_unet_config()
    config.channel_mult = [1]

    def dpm(**kwargs):
        torch.manual_seed(0)
        return DPM(unet=config, ema_decay=None, **kwargs).to(device)

    plain, fast = dpm(), dpm(compile=True)
    assert fast.state_dict().keys() == plain.state_dict().keys()  # checkpoints stay interchangeable
    fast.load_state_dict(plain.state_dict())
    t = plain.sample_time(8, torch.device(device))
    with torch.no_grad():
        torch.testing.assert_close(loss_with(fast, x0, t), loss_with(plain, x0, t), rtol=1e-3, atol=1e-5)
