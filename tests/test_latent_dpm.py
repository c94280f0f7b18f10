import math

import torch
from conftest import digits, quiet_trainer
from test_dpm import LossRecorder
from test_pdae import train_pdae

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import LatentDPM
from diffrep.nets.latent_mlp import LatentMLP


def test_constant_beta_schedule_has_geometric_alpha_bar():
    schedule = ScheduleConfig(beta_schedule="constant", beta_end=0.008).build()
    t = torch.tensor([0, 9, 999])
    expected = torch.tensor([0.992 ** (k + 1) for k in (0, 9, 999)], dtype=torch.float64)
    torch.testing.assert_close(schedule.alpha(t).double() ** 2, expected, rtol=1e-5, atol=0)


def test_latent_mlp_starts_at_zero_and_keeps_shape():
    net = LatentMLP(latent_dim=6, hidden=32, num_layers=4)
    out = net(torch.randn(5, 6), torch.tensor([0, 1, 10, 100, 999]))
    assert out.shape == (5, 6) and out.abs().max().item() == 0.0


def test_latent_dpm_learns_codes_and_generates_images(tiny_dpm_checkpoint, tmp_path):
    _, trainer = train_pdae(tiny_dpm_checkpoint, tmp_path / "pdae", steps=30)
    pdae_path = tmp_path / "pdae.ckpt"
    trainer.save_checkpoint(pdae_path)
    torch.manual_seed(0)
    model = LatentDPM(str(pdae_path), hidden=64, num_layers=4, lr=2e-3, ema_decay=0.9, norm_batches=5)
    frozen = {k: v.clone() for k, v in model.pdae.state_dict().items()}
    recorder = LossRecorder()
    quiet_trainer(tmp_path, max_steps=120, callbacks=[recorder]).fit(model, datamodule=digits())
    # Codes were standardised with their own statistics, and only the MLP learned.
    z = model.pdae.encoder(next(iter(digits(batch_size=256).train_dataloader()))[0])
    zn = model.normalise(z)
    assert zn.mean(0).abs().max() < 0.5 and ((zn.std(0) - 1).abs().max() < 0.5)
    assert all(torch.equal(v, frozen[k]) for k, v in model.pdae.state_dict().items())
    assert sum(recorder.losses[-20:]) < sum(recorder.losses[:20])
    # L1 loss on unit-variance eps: an untrained (zero) predictor scores E|eps| = sqrt(2/pi).
    assert math.isclose(sum(recorder.losses[:3]) / 3, math.sqrt(2 / math.pi), rel_tol=0.15)
    images = model.sample(4, num_steps=10)
    assert images.shape == (4, 1, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert model.encode(images).shape == (4, 8)
