import pytest
import torch
from conftest import digits, quiet_trainer
from test_dpm import LossRecorder

from diffrep.checkpoints import CheckpointError
from diffrep.lightning_modules import PDAE


def make_pdae(ckpt, **kwargs) -> PDAE:
    torch.manual_seed(0)
    return PDAE(str(ckpt), latent_dim=8, encoder_kwargs={"channels": (16, 32), "num_groups": 8, "num_heads": 1},
                lr=1e-3, ema_decay=0.9, **kwargs)


def test_shift_is_zero_at_start_so_pdae_equals_the_dpm(tiny_dpm_checkpoint):
    model = make_pdae(tiny_dpm_checkpoint)
    x, t, z = torch.randn(3, 1, 16, 16), torch.tensor([5, 500, 990]), torch.randn(3, 8)
    eps, g = model.decoder(x, t, z)
    assert g.abs().max().item() == 0.0
    torch.testing.assert_close(model.shifted_eps(x, t, z), model.decoder.unet(x, t))


def test_frozen_dpm_gets_no_gradient_and_stays_bit_identical(tiny_dpm_checkpoint, tmp_path):
    model = make_pdae(tiny_dpm_checkpoint)
    frozen = {k: v.clone() for k, v in model.decoder.unet.state_dict().items()}
    recorder = LossRecorder()
    quiet_trainer(tmp_path, max_steps=60, callbacks=[recorder]).fit(model, datamodule=digits())
    model.train()
    assert all(not m.training for m in model.decoder.frozen_modules())
    for key, value in model.decoder.unet.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    assert all(p.grad is None for p in model.decoder.unet.parameters())
    assert sum(recorder.losses[-15:]) < sum(recorder.losses[:15])
    # The frozen U-Net is stored once, and not in the EMA.
    keys = model.state_dict().keys()
    assert sum(k.endswith("input_blocks.1.0.in_layers.2.weight") for k in keys) == 1
    assert not any("ema.decoder__input_blocks" in k for k in keys)


def test_missing_checkpoint_names_the_fix(tmp_path):
    with pytest.raises(CheckpointError, match="configs/dpm.yaml"):
        PDAE(str(tmp_path / "nope.ckpt"))
