import math

import pytest
import torch
from conftest import digits, quiet_trainer
from test_dpm import LossRecorder

from diffrep.checkpoints import CheckpointError
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import LatentDPM
from diffrep.lightning_modules.latent_prior import LatentPrior
from diffrep.nets.latent_mlp import LatentMLP


def test_constant_beta_schedule_has_geometric_alpha_bar():
    schedule = ScheduleConfig(beta_schedule="constant", beta_end=0.008).build()
    t = torch.tensor([0, 9, 999])
    expected = torch.tensor([0.992 ** (k + 1) for k in (0, 9, 999)], dtype=torch.float64)
    torch.testing.assert_close(schedule.alpha(t).double() ** 2, expected, rtol=1e-5, atol=0)


def test_latent_mlp_is_the_official_architecture_with_pinned_outputs():
    """Values pinned once from the architecture of ckczzj/PDAE model/mlp_skip_net.py (time embedding of
    the code's width, scale before LayerNorm, Kaiming init, default init of the output layer); the
    same module with the official class's weights gave identical outputs."""
    torch.manual_seed(0)
    net = LatentMLP(6, hidden=32, num_layers=4, time_dim=16)
    assert sum(p.numel() for p in net.parameters()) == 3962
    assert {k.rsplit(".", 1)[0] for k in net.state_dict() if k.startswith("layers.1.")} == {
        "layers.1.linear", "layers.1.linear_emb", "layers.1.cond_layers.1", "layers.1.norm"}
    assert "layers.3.norm.weight" not in net.state_dict() and net.time_embed[0].out_features == 6
    z = torch.linspace(-1, 1, 12).reshape(2, 6)
    with torch.no_grad():
        out = net(z, torch.tensor([0, 700]))
    expected = torch.tensor([[-0.2916, 0.1134, -0.4987, -0.3190, -0.3778, -0.0446],
                             [0.2345, 0.1180, 0.3935, 0.7068, 0.0378, 0.0664]])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-4)


def fit_latent_dpm(checkpoint, tmp_path, steps=120, **kwargs):
    torch.manual_seed(0)
    model = LatentDPM(str(checkpoint), network={"hidden": 64, "num_layers": 4}, optimisation={"lr": 2e-3},
                      ema={"decay": 0.9}, **kwargs)
    recorder = LossRecorder()
    trainer = quiet_trainer(tmp_path, max_steps=steps, callbacks=[recorder])
    trainer.fit(model, datamodule=digits())
    return model, recorder, trainer


def test_latent_dpm_learns_pdae_codes_with_whole_split_statistics_and_generates(tiny_pdae_checkpoint, tmp_path):
    model, recorder, _ = fit_latent_dpm(tiny_pdae_checkpoint, tmp_path)
    frozen = {k: v.clone() for k, v in model.base.state_dict().items()}
    # Codes were standardised with the statistics of the whole training split, under EMA weights.
    data = digits(batch_size=2000)
    z = model.base.encode(next(iter(data.train_dataloader()))[0])  # the whole 1400-image split
    torch.testing.assert_close(model.z_mean, z.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.z_std, z.std(0), rtol=1e-4, atol=1e-5)
    assert all(torch.equal(v, frozen[k]) for k, v in model.base.state_dict().items())
    assert sum(recorder.losses[-20:]) < sum(recorder.losses[:20])
    # L1 loss on unit-variance eps with a fresh (non-zero-output) predictor starts near E|eps| = sqrt(2/pi).
    assert 0.5 * math.sqrt(2 / math.pi) < sum(recorder.losses[:3]) / 3 < 2.5 * math.sqrt(2 / math.pi)
    images = model.sample(4, num_steps=10)
    assert images.shape == (4, 1, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert model.encode(images).shape == (4, 8)


def test_official_latent_sampling_clamps_and_stops_at_the_t0_level(tiny_pdae_checkpoint, tmp_path):
    model, _, _ = fit_latent_dpm(tiny_pdae_checkpoint, tmp_path, steps=5)
    with torch.no_grad():
        model.net.layers[-1].linear.bias.fill_(50.0)  # a wild predictor: eps far off
    clipped = model.normalise(model.sample_codes(64, num_steps=10, generator=torch.Generator().manual_seed(0)))
    # z0 is clamped to [-1, 1] and the loop ends at the t = 0 level: sqrt(abar_0) z0 + sqrt(1 - abar_0) eps.
    abar0 = 0.992
    bound = abar0**0.5 + (1 - abar0) ** 0.5 * 60
    assert clipped.abs().max() <= bound
    model.clip_codes, model.latent_grid = False, "linspace"
    free = model.normalise(model.sample_codes(64, num_steps=10, generator=torch.Generator().manual_seed(0)))
    assert free.abs().max() > 10  # nothing stops the wild predictor without the clamp


def test_a_latent_dpm_works_on_drl_codes_and_feeds_drl_sampling(tiny_drl_checkpoint, tmp_path):
    from diffrep.lightning_modules.loading import load_trained

    model, recorder, trainer = fit_latent_dpm(tiny_drl_checkpoint, tmp_path, steps=60,
                                              sampling={"clip_codes": False, "latent_grid": "linspace"})
    assert type(model.base).__name__ == "DRL" and sum(recorder.losses[-10:]) < sum(recorder.losses[:10])
    assert model.sample(3, num_steps=5).shape == (3, 1, 16, 16)
    path = tmp_path / "latent.ckpt"
    trainer.save_checkpoint(path)
    prior = LatentPrior(path)
    torch.testing.assert_close(prior.z_mean, model.z_mean)
    gen = torch.Generator().manual_seed(3)
    codes = prior.sample_codes(5, 5, gen)
    torch.testing.assert_close(codes, model.sample_codes(5, 5, torch.Generator().manual_seed(3)))
    drl = load_trained(tiny_drl_checkpoint)
    drl.latent_dpm_checkpoint = str(path)
    assert drl.sample(2, num_steps=4).shape == (2, 1, 16, 16)


def test_a_latent_dpm_refuses_a_checkpoint_without_a_code(tiny_dpm_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="is a DPM checkpoint.*PDAE, DRL, VDRL, DiffAE"):
        LatentDPM(str(tiny_dpm_checkpoint))
    with pytest.raises(CheckpointError, match="does not exist"):
        LatentDPM(str(tmp_path / "missing.ckpt"))
