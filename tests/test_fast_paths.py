"""GPU speed options give the network the same outputs as the plain fp32 path (on CPU always; on
CUDA when present). Compared on trained models (session fixtures), whose outputs are far from the
zero that a freshly initialised U-Net (zero output head) gives every variant alike."""

import pytest
import torch
from conftest import tiny_unet_config

from diffrep.diffusion.process import q_sample
from diffrep.lightning_modules import DPM, DRL
from diffrep.lightning_modules.loading import load_trained

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def trained(tiny_dpm_checkpoint, tiny_drl_checkpoint):
    return {"dpm": tiny_dpm_checkpoint, "drl": tiny_drl_checkpoint}


def build(path, device, **options):
    """The trained model of ``path`` (EMA weights in), rebuilt with the speed ``options``."""
    reference = load_trained(path)
    hparams = {k: v for k, v in reference.hparams.items() if not k.startswith("_")}
    cls = DPM if isinstance(reference, DPM) else DRL
    model = cls(**{**hparams, "ema": {"decay": None}, **options})
    model.load_state_dict(reference.state_dict(), strict=False)
    return model.eval().to(device)


def predictions(model, device, autocast=False):
    """The network's eps on fixed x_t of digits-like images: the DPM's, or DRL's given its code of x0."""
    generator = torch.Generator().manual_seed(0)
    x0 = (torch.rand(8, 1, 16, 16, generator=generator) * 2 - 1).to(device)
    t = torch.linspace(0.05, 0.95, 8) * model.schedule.t_max
    t = t.round().long().to(device) if getattr(model.schedule, "discrete", False) else t.to(device)
    eps = torch.randn(x0.shape, generator=generator).to(device)
    x_t = q_sample(model.schedule, x0, t, eps)
    with torch.no_grad(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
        eps_fn = model.eps if isinstance(model, DPM) else model.code_eps_fn(model.code_of(x0))
        return eps_fn(x_t, t).float()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["dpm", "drl"])
def test_bf16_autocast_outputs_match_fp32(trained, name, device):
    model = build(trained[name], device)
    fp32, bf16 = predictions(model, device), predictions(model, device, autocast=True)
    assert fp32.std() > 0.3, "the trained network predicts eps, not zeros"
    # bf16 keeps 8 mantissa bits: outputs of unit scale agree to a few hundredths.
    torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.05)
    assert (bf16 - fp32).abs().mean() < 0.02


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["dpm", "drl"])
def test_channels_last_gives_the_same_outputs(trained, name, device):
    plain, fast = build(trained[name], device), build(trained[name], device, fast={"channels_last": True})
    expected = predictions(plain, device)
    assert expected.std() > 0.3
    torch.testing.assert_close(predictions(fast, device), expected, rtol=1e-4, atol=1e-5)
    # the option is applied, not only harmless: NHWC weights and inputs
    conv = next(p for p in fast.unet.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)
    plain_conv = next(p for p in plain.unet.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert plain_conv.is_contiguous()
    x = torch.zeros(2, 1, 16, 16, device=device)
    assert fast.to_memory_format(x).is_contiguous(memory_format=torch.channels_last)
    assert plain.to_memory_format(x) is x


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_unet_gives_the_same_outputs_and_state_dict_keys(device):
    """Forward only, on a one-level U-Net with non-zero weights everywhere (inductor's compile time
    grows with the graph): ``compile`` keeps the outputs and the checkpoint keys."""
    config = tiny_unet_config()
    config.channel_mult = [1]

    def dpm(**kwargs):
        torch.manual_seed(0)
        return DPM(unet=config, **kwargs, ema={"decay": None}).eval().to(device)

    plain, fast = dpm(), dpm(fast={"compile": True})
    assert fast.state_dict().keys() == plain.state_dict().keys()  # checkpoints stay interchangeable
    # the U-Net is compiled in place (nn.Module.compile), the plain one is not
    assert fast.unet._compiled_call_impl is not None and plain.unet._compiled_call_impl is None
    with torch.no_grad():
        for p in plain.parameters():  # the zero-initialised output head would make every variant output 0
            p.add_(0.05 * torch.randn_like(p))
    fast.load_state_dict(plain.state_dict())
    expected = predictions(plain, device)
    assert expected.std() > 0.01
    torch.testing.assert_close(predictions(fast, device), expected, rtol=1e-3, atol=1e-5)
