import lightning as L
import pytest
import torch
from conftest import digits, quiet_trainer, tiny_unet_config
from lightning.pytorch.callbacks import ModelCheckpoint

from diffrep.checkpoints import load_dpm
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import DPM


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def make_dpm(**kwargs) -> DPM:
    L.seed_everything(0)
    return DPM(
        unet=tiny_unet_config(),
        schedule=ScheduleConfig(num_timesteps=1000),
        **kwargs,
        optimisation={"lr": 2e-3},
        ema={"decay": 0.9},
    )


def test_tiny_dpm_loss_falls_on_digits(tmp_path):
    recorder = LossRecorder()
    quiet_trainer(tmp_path, max_steps=80, callbacks=[recorder]).fit(make_dpm(), datamodule=digits(batch_size=32))
    first, last = sum(recorder.losses[:15]) / 15, sum(recorder.losses[-15:]) / 15
    assert last < 0.6 * first, (first, last)


def test_resume_mid_epoch_continues_the_uninterrupted_run_exactly(tmp_path):
    """Stop at step 14 of a 21-step epoch, resume from last.ckpt with a scrambled RNG, run past the
    epoch end to step 30: every resumed loss equals the unbroken run's (weights, optimiser, EMA,
    RNG and the data position inside the epoch are all restored)."""
    straight = LossRecorder()
    quiet_trainer(tmp_path / "a", max_steps=30, callbacks=[straight]).fit(make_dpm(), datamodule=digits())

    ckpt = ModelCheckpoint(dirpath=tmp_path / "b", save_last=True, every_n_train_steps=7)
    first = LossRecorder()
    quiet_trainer(tmp_path / "b", max_steps=14, callbacks=[first, ckpt], enable_checkpointing=True).fit(
        make_dpm(), datamodule=digits()
    )
    second = LossRecorder()
    trainer = quiet_trainer(tmp_path / "b", max_steps=30, callbacks=[second])
    torch.manual_seed(1234)  # a different RNG state: resume must restore the saved one
    trainer.fit(make_dpm(), datamodule=digits(), ckpt_path=str(tmp_path / "b" / "last.ckpt"))

    assert trainer.global_step == 30 and len(second.losses) == 16
    assert first.losses == straight.losses[:14]
    assert second.losses == straight.losses[14:]


def test_checkpoint_carries_ema_weights_that_load_dpm_returns(tiny_dpm_checkpoint):
    unet, schedule = load_dpm(tiny_dpm_checkpoint)
    raw = torch.load(tiny_dpm_checkpoint, weights_only=False)
    key = "input_blocks.1.0.in_layers.2.weight"
    ema = raw["state_dict"]["ema.unet__" + key.replace(".", "__")]
    assert torch.equal(unet.state_dict()[key], ema)
    assert not torch.equal(ema, raw["state_dict"]["unet." + key])
    assert schedule.num_timesteps == 1000 and unet.config.image_size == 16


def test_round_trip_inversion_of_a_trained_dpm(tiny_dpm_checkpoint):
    """DDIM inversion then sampling recovers digits: mean abs error below 0.1 on [-1, 1] images with 100 steps."""
    model = DPM.load_from_checkpoint(tiny_dpm_checkpoint)
    dm = digits()
    dm.setup()
    x0 = torch.stack([dm.splits["val"][i][0] for i in range(8)])
    recon = model.reconstruct(x0, num_steps=100)
    error = (recon - x0).abs().mean().item()
    assert error < 0.1, error
    for mode in (False, True):  # reconstructing runs in eval mode and restores the mode it found
        model.train(mode)
        model.reconstruct(x0[:1], num_steps=2)
        assert model.training is mode


def test_samples_have_image_shape_and_range(tiny_dpm_checkpoint):
    model = DPM.load_from_checkpoint(tiny_dpm_checkpoint)
    samples = model.sample(4, num_steps=10, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 16, 16) and samples.min() >= -1 and samples.max() <= 1


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    from diffrep.lightning_modules.backbone import NonFiniteLossError

    model = make_dpm()
    model.unet.out[2].bias.data.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 0"):
        quiet_trainer(tmp_path, max_steps=2).fit(model, datamodule=digits())
