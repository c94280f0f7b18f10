import pytest
import torch
from conftest import digits, make_pdae, quiet_trainer

from diffrep.checkpoints import CheckpointError
from diffrep.lightning_modules import PDAE
from diffrep.lightning_modules.loading import load_pdae


def test_shift_is_zero_at_start_so_pdae_equals_the_dpm(tiny_dpm_checkpoint):
    model = make_pdae(tiny_dpm_checkpoint)
    x, t, z = torch.randn(3, 1, 16, 16), torch.tensor([5, 500, 990]), torch.randn(3, 8)
    eps, g = model.decoder(x, t, z)
    assert g.abs().max().item() == 0.0
    torch.testing.assert_close(model.shifted_eps(x, t, z), model.decoder.unet(x, t))


def test_frozen_dpm_gets_no_gradient_and_stays_bit_identical(tiny_dpm_checkpoint, tmp_path):
    model = make_pdae(tiny_dpm_checkpoint)
    frozen = {k: v.clone() for k, v in model.decoder.unet.state_dict().items()}
    x0 = next(iter(digits(batch_size=128).val_dataloader()))[0]

    def seeded_loss():  # the objective at fixed t and noise, so before and after compare
        with torch.no_grad(), model.fixed_noise(0):
            return model.loss(x0).item()

    before = seeded_loss()
    quiet_trainer(tmp_path, max_steps=40).fit(model, datamodule=digits(batch_size=32))
    model.train()
    assert all(not m.training for m in model.decoder.frozen_modules())
    for key, value in model.decoder.unet.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    assert all(p.grad is None for p in model.decoder.unet.parameters())
    assert seeded_loss() < 0.95 * before
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


def test_pdae_reconstructions_beat_the_dpm_from_the_same_inverted_noise(tiny_pdae_checkpoint):
    model = load_pdae(tiny_pdae_checkpoint)
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


def test_pdae_checkpoint_is_self_contained_and_reloads(tiny_pdae_checkpoint, tiny_dpm_checkpoint):
    raw = torch.load(tiny_pdae_checkpoint, weights_only=False)
    moved = tiny_dpm_checkpoint.with_suffix(".moved")
    tiny_dpm_checkpoint.rename(moved)  # the DPM file is not needed
    try:
        reloaded = load_pdae(tiny_pdae_checkpoint)
    finally:
        moved.rename(tiny_dpm_checkpoint)
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    ema = {k[len("ema."):].replace("__", "."): v for k, v in raw["state_dict"].items() if k.startswith("ema.")}
    for key, value in reloaded.encoder.state_dict().items():  # EMA weights baked in
        assert torch.equal(value, ema["encoder." + key]), key
    assert reloaded.encode(x0).shape == (4, 8)
    for key, value in reloaded.decoder.unet.state_dict().items():
        assert torch.equal(raw["state_dict"]["decoder." + key], value), key


def write_official_dpm(folder, size, channel_mult, attention, heads, channels=3, size_key="train_dataset_config"):
    """An official PDAE pre-trained DPM folder: checkpoint.pt ({'ema_denoise_fn': U-Net state
    dict}) and the official trainer's config.yml beside it (image size under ``size_key``)."""
    import yaml

    from diffrep.nets.unet import UNet, UNetConfig

    folder.mkdir(parents=True, exist_ok=True)
    cfg = UNetConfig(in_channels=channels, image_size=size, base_channels=32, channel_mult=channel_mult,
                     num_res_blocks=1, attention_resolutions=attention, num_heads=heads)
    torch.manual_seed(0)
    unet = UNet(cfg)  # official nets always use 32 GroupNorm groups
    with torch.no_grad():  # every weight non-zero, so each one counts in the comparison
        for p in unet.parameters():
            p.normal_(0, 0.05)
    torch.save({"ema_denoise_fn": unet.state_dict()}, folder / "checkpoint.pt")
    config = {
        "diffusion_config": {"timesteps": 1000, "betas_type": "linear"},
        "denoise_fn_config": {
            "model": "DenoiseFn", "input_channel": channels, "base_channel": 32, "channel_multiplier": channel_mult,
            "num_residual_blocks_of_a_block": 1, "attention_resolutions": attention, "num_heads": heads,
            "head_channel": -1, "use_new_attention_order": False, "dropout": 0.0,
        },
    }
    if size_key:
        config[size_key] = {"name": "DATA", "image_size": size, "image_channel": channels}
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    return unet


@pytest.mark.parametrize(
    "size, channel_mult, attention, heads",
    [(32, [1, 2], [], 1), (64, [1, 2, 2, 2], [4], 4), (128, [1, 1, 2, 2, 2], [16], 4)],
    ids=["32px", "64px-celeba64", "128px-ffhq128"],
)
def test_an_official_dpm_is_imported_at_its_own_image_size(tmp_path, size, channel_mult, attention, heads):
    """The size comes from train_dataset_config (what the official trainer saves), never a default of 32."""
    from diffrep.checkpoints import load_dpm

    unet = write_official_dpm(tmp_path, size, channel_mult, attention, heads)
    imported, schedule = load_dpm(tmp_path / "checkpoint.pt")
    assert imported.config.image_size == size and schedule.num_timesteps == 1000
    x, t = torch.randn(2, 3, size, size), torch.tensor([3, 800])
    with torch.no_grad():
        torch.testing.assert_close(imported(x, t), unet(x, t), rtol=0, atol=0)
    model = PDAE(
        str(tmp_path / "checkpoint.pt"),
        latent_dim=8,
        ema={"decay": None},
        encoder={"kind": "conv", "channels": (16, 32), "num_heads": 1, "num_groups": 8},
    )
    assert model.encode(torch.randn(2, 3, size, size)).shape == (2, 8)
    names = {k.split(".")[0] for k, p in model.decoder.named_parameters() if p.requires_grad}
    assert names == {"label_emb", "shift_middle_block", "shift_output_blocks", "shift_out"}  # official ShiftUNet


def test_the_celeba64_recipe_builds_on_an_official_64px_dpm(tmp_path):
    import yaml
    from conftest import REPO

    write_official_dpm(tmp_path, 64, [1, 2, 2, 2], [4], 4)
    args = yaml.safe_load((REPO / "configs/pdae_celeba64.yaml").read_text())["model"]["init_args"]
    args.update(dpm_checkpoint=str(tmp_path / "checkpoint.pt"), fast={"compile": False})
    model = PDAE(**args)
    x0 = torch.rand(2, 3, 64, 64) * 2 - 1
    assert model.encode(x0).shape == (2, 512) and model.image_shape == (3, 64, 64)
    loss = model.loss(x0)
    assert torch.isfinite(loss)


def test_an_official_config_without_an_image_size_is_refused_naming_the_key(tmp_path):
    write_official_dpm(tmp_path, 64, [1, 2, 2, 2], [4], 4, size_key=None)
    with pytest.raises(CheckpointError, match="train_dataset_config"):
        PDAE(str(tmp_path / "checkpoint.pt"))
    write_official_dpm(tmp_path, 64, [1, 2, 2, 2], [4], 4, size_key="dataset_config")  # older files
    from diffrep.checkpoints import load_dpm

    assert load_dpm(tmp_path / "checkpoint.pt")[0].config.image_size == 64


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


def test_generate_switches_the_shift_off_for_the_last_steps(tiny_pdae_checkpoint):
    from diffrep.diffusion.sampling import ddim_sample

    model = load_pdae(tiny_pdae_checkpoint)
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


def test_on_the_official_grid_the_shift_is_off_for_the_official_steps(tiny_pdae_checkpoint):
    """ckczzj/PDAE shift_ddim_sample_loop: call i of N (from the bottom) has the shift iff i - 1 >= int(0.3 N)."""
    model = load_pdae(tiny_pdae_checkpoint)
    model.set_timestep_grid("official")
    shifted = []
    eps_fn = model.guided_eps_fn(torch.zeros(1, 8), model.shift_from(100))
    calls = model.schedule.sampling_times(100, "official").tolist()
    for t in calls:  # which calls of the 100-step official loop take the shift
        shifted.append(t >= model.shift_from(100))
    assert sum(shifted) == 100 - 30 and not shifted[-1] and shifted[0]
    assert min(t for t, s in zip(calls, shifted, strict=True) if s) == 309  # map[31] of int(linspace(0, 999, 101))
    assert eps_fn(model.noise(1), torch.tensor([309])).shape == (1, 1, 16, 16)
