"""Diff-AE's official denoiser (``DiffAE(network={"kind": "beatgans"})``, ``diffrep.nets.beatgans``) and the
official ddimN grid: the paper config's parameter counts against the official model's, the code
path as the only way z enters, the grid's levels and its inversion's last step, a tiny fit with
every evaluation callback, and checkpoints that load back. Equality with phizaz/diffae on shared
weights is benchmarks/official_parity.py --diffae (it needs the official clone)."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import REPO, digits, fit_plain, fit_with_every_evaluation_callback, quiet_trainer

from diffrep.diffusion.sampling import ddim_invert, ddim_sample
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.lightning_modules import DiffAE
from diffrep.lightning_modules.loading import load_trained
from diffrep.nets.beatgans import BeatGANsAutoencUNet, BeatGANsConfig


def tiny_official(**kwargs) -> DiffAE:
    torch.manual_seed(0)
    return DiffAE(
        **kwargs,
        code={"latent_dim": 32},
        sampling={"timestep_grid": "diffae"},
        optimisation={"lr": 2e-3},
        ema={"decay": 0.9},
        network={
            **dict(
                in_channels=1,
                image_size=16,
                base_channels=16,
                channel_mult=[1, 2],
                num_res_blocks=1,
                attention_resolutions=[8],
                num_groups=8,
                embed_channels=32,
                dropout=0.0,
            ),
            "kind": "beatgans",
        },
        encoder=dict(
            kind="halfunet",
            base_channels=16,
            channel_mult=[1, 2],
            num_res_blocks=1,
            num_groups=8,
            attention_resolutions=[8],
        ),
    )


def test_the_paper_config_has_the_official_models_parameter_counts():
    """Counted on phizaz/diffae's BeatGANsAutoencModel built by its config.py at the
    ffhq128_autoenc settings: 103,871,619 in the denoiser, 24,673,536 in the semantic encoder."""
    args = yaml.safe_load((REPO / "configs/diffae_ffhq128.yaml").read_text())["model"]["init_args"]
    model = DiffAE(**{**args, "fast": None})
    assert isinstance(model.unet, BeatGANsAutoencUNet)
    assert sum(p.numel() for p in model.unet.parameters()) == 103_871_619
    assert sum(p.numel() for p in model.encoder.parameters()) == 24_673_536
    assert list(model.unet.state_dict())[:2] == ["time_embed.time_embed.0.weight", "time_embed.time_embed.0.bias"]


def test_the_code_enters_only_through_the_resblocks_code_layers():
    net = BeatGANsAutoencUNet(
        BeatGANsConfig(
            in_channels=1,
            image_size=16,
            base_channels=16,
            channel_mult=[1, 2],
            num_res_blocks=1,
            num_groups=8,
            embed_channels=32,
            dropout=0.0,
        ),
        z_dim=8,
    )
    with torch.no_grad():
        for p in net.parameters():  # every weight non-zero, the zero-initialised output convs included
            p.copy_(torch.randn_like(p) * 0.1)
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([10, 900])
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    assert (net(x, t, z1) - net(x, t, z2)).abs().max() > 1e-3
    code_layers = [m.cond_emb_layers for m in net.modules() if hasattr(m, "cond_emb_layers")]
    assert len(code_layers) == 10  # 3 in the encoder half (a down block among them), 2 middle, 5 decoder (1 up)
    with torch.no_grad():
        for layers in code_layers:
            for p in layers.parameters():
                p.zero_()
    torch.testing.assert_close(net(x, t, z1), net(x, t, z2), rtol=0, atol=0)


def test_the_diffae_grid_respaces_like_the_official_ddimN():
    schedule = ScheduleConfig().build()
    levels, ends_clean = schedule.ddim_levels(10, "diffae")
    assert levels.tolist() == list(range(900, -1, -100)) and ends_clean
    assert schedule.ddim_levels(20, "diffae")[0][:3].tolist() == [950, 900, 850]
    with pytest.raises(ConfigError, match="integer stride"):
        schedule.ddim_levels(600, "diffae")

    calls = []

    def constant_eps(x, t):
        calls.append(int(t[0]))
        return torch.full_like(x, 0.3)

    x_T = ddim_invert(constant_eps, schedule, torch.zeros(2, 1, 4, 4), 10, clip_x0=False, grid="diffae")
    assert calls == list(range(0, 1000, 100))  # N calls, the last from the top level ...
    torch.testing.assert_close(x_T, torch.full_like(x_T, 0.3))  # ... to alpha = 0: x_T is the eps estimate
    calls.clear()
    ddim_sample(constant_eps, schedule, x_T, 10, grid="diffae")
    assert calls == list(range(900, -1, -100))


def test_a_tiny_official_diffae_learns_and_runs_every_evaluation_callback(tmp_path):
    model = tiny_official()
    losses = fit_plain(model, digits(batch_size=32), 60)
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10, losses
    fit_with_every_evaluation_callback(model, tmp_path)


@pytest.mark.parametrize("denoiser", ["unet", "official"])
def test_a_diffae_checkpoint_loads_back_with_its_denoiser(denoiser, tmp_path):
    """Saved hyper-parameters hold DRL's z_mode too; DiffAE takes it (it used to refuse its own checkpoints)."""
    model = (
        tiny_official()
        if denoiser == "official"
        else DiffAE(
            code={"latent_dim": 8},
            network=dict(
                in_channels=1, image_size=16, base_channels=16, channel_mult=[1, 2], num_res_blocks=1, num_groups=8
            ),
            encoder=dict(kind="halfunet", base_channels=16, channel_mult=[1, 2], num_res_blocks=1, num_groups=8),
        )
    )
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.fit(model, datamodule=digits(batch_size=16, subset=32))
    trainer.save_checkpoint(tmp_path / "diffae.ckpt")
    assert type(load_trained(tmp_path / "diffae.ckpt", ["DiffAE"]).unet) is type(model.unet)  # a latent DPM's path
    loaded = DiffAE.load_from_checkpoint(tmp_path / "diffae.ckpt", weights_only=False)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="z_mode"):
        DiffAE(network={"z_mode": "ncsnpp"})
