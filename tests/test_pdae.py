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


def test_c_t_shifts_the_posterior_mean_by_btilde_times_g():
    """eps + c_t G gives the posterior mean mu_theta + btilde_t G (PDAE eq. 9), against Ho et al. eq. 6-7."""
    from diffrep.diffusion.process import mean_shift_eps_coefficient, posterior_mean_variance, x0_from_eps
    from diffrep.diffusion.schedule import ScheduleConfig

    schedule = ScheduleConfig(num_timesteps=1000).build()
    t = torch.tensor([1, 10, 500, 999])
    x_t, eps, g = (
        torch.randn(4, 1, 4, 4, dtype=torch.float64),
        torch.randn(4, 1, 4, 4, dtype=torch.float64),
        torch.randn(4, 1, 4, 4, dtype=torch.float64),
    )
    c = mean_shift_eps_coefficient(schedule, t).reshape(-1, 1, 1, 1)
    mean_plain, var = posterior_mean_variance(schedule, x0_from_eps(schedule, x_t, t, eps), x_t, t)
    mean_shifted, _ = posterior_mean_variance(schedule, x0_from_eps(schedule, x_t, t, eps + c * g), x_t, t)
    torch.testing.assert_close(mean_shifted, mean_plain + var.reshape(-1, 1, 1, 1) * g)


def train_pdae(ckpt, tmp_path, steps=150, **kwargs):
    model = make_pdae(ckpt, **kwargs)
    trainer = quiet_trainer(tmp_path, max_steps=steps)
    trainer.fit(model, datamodule=digits())
    return model, trainer


def test_pdae_reconstructions_beat_the_dpm_from_the_same_inverted_noise(tiny_dpm_checkpoint, tmp_path):
    model, _ = train_pdae(tiny_dpm_checkpoint, tmp_path)
    x0 = torch.cat([b[0] for b, _ in zip(digits(batch_size=32).val_dataloader(), range(1), strict=False)])
    z = model.encode(x0)
    x_T = model.invert(x0, z, num_steps=20)
    pdae_recon = model.decode(z, x_T, num_steps=20)
    with model.inference():
        from diffrep.diffusion.sampling import ddim_sample

        dpm_recon = ddim_sample(model.guided_eps_fn(None), model.schedule, x_T, 20)
    pdae_mse = (pdae_recon - x0).pow(2).mean().item()
    dpm_mse = (dpm_recon - x0).pow(2).mean().item()
    assert pdae_mse < 0.7 * dpm_mse, (pdae_mse, dpm_mse)
    # And the codes carry the image: decoding from fresh noise keeps more than an unrelated code.
    noise = model.noise(len(x0))
    own = (model.decode(z, noise, 20) - x0).pow(2).mean()
    other = (model.decode(z.roll(1, 0), noise, 20) - x0).pow(2).mean()
    assert own < other


def test_pdae_checkpoint_is_self_contained_and_reloads(tiny_dpm_checkpoint, tmp_path):
    from diffrep.lightning_modules.pdae import load_pdae

    model, trainer = train_pdae(tiny_dpm_checkpoint, tmp_path, steps=20)
    path = tmp_path / "pdae.ckpt"
    trainer.save_checkpoint(path)
    tiny_dpm_checkpoint.rename(tiny_dpm_checkpoint.with_suffix(".moved"))  # the DPM file is not needed
    try:
        reloaded = load_pdae(path)
    finally:
        tiny_dpm_checkpoint.with_suffix(".moved").rename(tiny_dpm_checkpoint)
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    torch.testing.assert_close(reloaded.encoder(x0), model.encode(x0))  # EMA weights baked in
    for key, value in model.decoder.unet.state_dict().items():
        assert torch.equal(reloaded.decoder.unet.state_dict()[key], value), key


def test_official_pdae_checkpoint_layout_loads(tmp_path):
    """An official checkpoint.pt ({'ema_denoise_fn': U-Net state dict}) beside its config.yml."""
    import yaml

    from diffrep.nets.unet import UNet, UNetConfig

    cfg = UNetConfig(in_channels=1, image_size=16, base_channels=32, channel_mult=[1, 2], num_res_blocks=1)
    unet = UNet(cfg)  # official nets always use 32 GroupNorm groups
    torch.save({"ema_denoise_fn": unet.state_dict()}, tmp_path / "checkpoint.pt")
    (tmp_path / "config.yml").write_text(
        yaml.safe_dump(
            {
                "dataset_config": {"image_size": 16},
                "diffusion_config": {"timesteps": 1000, "betas_type": "linear"},
                "denoise_fn_config": {
                    "input_channel": 1,
                    "base_channel": 32,
                    "channel_multiplier": [1, 2],
                    "num_residual_blocks_of_a_block": 1,
                    "attention_resolutions": [],
                    "num_heads": 1,
                    "head_channel": -1,
                    "dropout": 0.0,
                },
            }
        )
    )
    model = make_pdae(tmp_path / "checkpoint.pt")
    for key, value in unet.state_dict().items():
        assert torch.equal(model.decoder.state_dict()[key], value), key
    # The trainable part carries the official ShiftUNet names.
    names = {k.split(".")[0] for k, p in model.decoder.named_parameters() if p.requires_grad}
    assert names == {"label_emb", "shift_middle_block", "shift_output_blocks", "shift_out"}


def test_data_of_another_size_or_channel_count_is_refused_before_training(tiny_dpm_checkpoint, tmp_path):
    model = make_pdae(tiny_dpm_checkpoint)
    with pytest.raises(ValueError, match="takes 1x16x16 images but the data gives 1x8x8.*image_size 16"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, datamodule=digits(image_size=8))


def test_a_diffrep_checkpoint_of_another_architecture_is_refused(tiny_dpm_checkpoint, tmp_path):
    checkpoint = torch.load(tiny_dpm_checkpoint, weights_only=False)
    checkpoint["diffrep"]["unet"]["base_channels"] = 32
    torch.save(checkpoint, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="do not fit the U-Net"):
        make_pdae(tmp_path / "bad.ckpt")


def test_generate_switches_the_shift_off_for_the_last_steps(tiny_dpm_checkpoint, tmp_path):
    from diffrep.diffusion.sampling import ddim_sample

    model, _ = train_pdae(tiny_dpm_checkpoint, tmp_path, steps=30)
    z, x_T = torch.randn(3, 8), model.noise(3)
    model.shift_off_fraction = 1.0  # off everywhere: the plain DPM
    with model.inference():
        plain = ddim_sample(model.guided_eps_fn(None), model.schedule, x_T, 10)
    torch.testing.assert_close(model.generate(z, x_T, 10), plain)
    model.shift_off_fraction = 0.0  # on everywhere: decode
    torch.testing.assert_close(model.generate(z, x_T, 10), model.decode(z, x_T, 10))
    model.shift_off_fraction = 0.3
    partial = model.generate(z, x_T, 10)
    assert not torch.allclose(partial, plain) and not torch.allclose(partial, model.decode(z, x_T, 10))
