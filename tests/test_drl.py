import csv
import math

import pytest
import torch
from conftest import REPO, digits, fit_plain, make_drl, quiet_trainer, run_cli, tiny_unet_config

from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import DPM, DRL, VDRL, DiffAE
from diffrep.lightning_modules.backbone import UnsupportedOperation
from diffrep.nets.codes import gaussian_kl


def make(cls=DRL, **kwargs):
    return make_drl(cls, **kwargs)


def loss_at_sigma_one(model, x0: torch.Tensor, repeats: int = 8) -> float:
    """The eps error at sigma = 1, where 16 noised images are most ambiguous, with seeded noise."""
    t = torch.full((len(x0),), math.log(100) / math.log(5000))
    model.eval()
    with torch.no_grad():
        losses = []
        for i in range(repeats):
            with model.fixed_noise(i):
                losses.append(model.loss(x0, t).item())
    return sum(losses) / len(losses)


def test_a_perfect_information_code_beats_unconditional_denoising(tmp_path):
    """DRL's premise: on a tiny data set the unconditional DSM loss has an irreducible part
    (which of the images was noised?) that a code carrying x0 removes."""
    ve = ScheduleConfig(kind="ve")
    data = digits(image_size=8, batch_size=16, subset=16)
    x0 = torch.cat([b[0] for b in data.train_dataloader()])
    small = tiny_unet_config(size=8)
    conditional = make(schedule=ve, code={"latent_dim": 64}, network=small, encoder="flatten")
    torch.manual_seed(0)
    unconditional = DPM(
        unet=small, schedule=ve, objective={"weighting": "sigma2"}, optimisation={"lr": 2e-3}, ema={"decay": None}
    )
    for model in (conditional, unconditional):
        torch.manual_seed(0)
        fit_plain(model, data, 250)
    cond, uncond = loss_at_sigma_one(conditional, x0), loss_at_sigma_one(unconditional, x0)
    assert cond < 0.8 * uncond, (cond, uncond)


def test_vdrl_kl_matches_the_closed_form_and_reaches_the_encoder():
    mean, logvar = torch.randn(5, 8), torch.randn(5, 8)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
    ).sum(1)
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected)
    model = make(VDRL, code={"kl_weight": 1.0})
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    mean, logvar = model.code_params(x0)
    gaussian_kl(mean, logvar).mean().backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    # The KL is in the training loss with the documented scale 2 kl_weight / num_pixels.
    model.zero_grad()
    torch.manual_seed(1)
    with_kl = model.loss(x0)
    model.kl_weight = 0.0
    torch.manual_seed(1)
    without = model.loss(x0)
    mean, logvar = model.code_params(x0)
    torch.testing.assert_close(with_kl - without, 2.0 / 256 * gaussian_kl(mean, logvar).mean(), rtol=1e-4, atol=1e-6)


def test_encode_reconstruct_interpolate_sample_shapes_for_every_method():
    x0 = torch.rand(3, 1, 16, 16) * 2 - 1
    for cls in (DRL, VDRL, DiffAE):
        model = make(cls)
        assert model.encode(x0).shape == (3, 8)
        assert model.reconstruct(x0, num_steps=3).shape == x0.shape
        assert model.reconstruct_from_noise(x0, num_steps=3).shape == x0.shape
        assert model.interpolate(x0[0], x0[1], num_points=4, num_steps=3).shape == (4, 1, 16, 16)
        samples = model.sample(2, num_steps=3)
        assert samples.shape == (2, 1, 16, 16) and samples.abs().max() <= 1
    assert make(DiffAE).schedule.discrete and not make(DRL).schedule.discrete


def test_time_dependent_code_gives_one_code_per_time():
    model = make(code={"time_dependent": True})
    x0 = torch.rand(3, 1, 16, 16) * 2 - 1
    codes = model.encode(x0, times=[0.0, 0.5, 1.0])
    assert codes.shape == (3, 24)
    assert not torch.allclose(codes[:, :8], codes[:, 16:])
    assert model.encode(x0).shape == (3, 8 * len(model.encode_times))
    assert model.interpolate(x0[0], x0[1], num_points=3, num_steps=3).shape == (3, 1, 16, 16)
    with pytest.raises(UnsupportedOperation, match="no prior"):
        model.sample(2)


def test_drl_tracks_a_gaussian_prior_of_its_codes(tmp_path):
    model = make(prior={"momentum": 0.95})
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    target = torch.distributions.MultivariateNormal(torch.tensor([1.0, -2.0]), cov)
    model.code_mean, model.code_cov = torch.zeros(2), torch.eye(2)
    model.latent_dim = 2
    for _ in range(400):
        model.track_code_prior(target.sample((256,)))
    torch.testing.assert_close(model.code_mean, target.mean, atol=0.1, rtol=0)
    torch.testing.assert_close(model.code_cov, cov, atol=0.15, rtol=0)
    drawn = model.sample_codes(4000)
    torch.testing.assert_close(drawn.mean(0), target.mean, atol=0.15, rtol=0)
    # After a fit the prior is the Gaussian of prior.items training codes under the EMA weights.
    model = make(VDRL, ema={"decay": 0.9}, prior={"items": 300})
    data = digits()
    quiet_trainer(tmp_path, max_steps=10).fit(model, datamodule=data)
    codes = model.encode(torch.stack([data.splits["train"][i][0] for i in range(300)]))  # EMA weights, means
    torch.testing.assert_close(model.code_mean, codes.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.code_cov, torch.cov(codes.T), rtol=1e-3, atol=1e-5)
    assert model.prior.kind == "fitted" and not torch.allclose(
        model.sample_codes(500).mean(0), torch.zeros(8), atol=0.1
    )


def _losses(metrics_csv):
    with open(metrics_csv) as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


@pytest.mark.parametrize("config", ["drl.yaml", "vdrl.yaml", "diffae.yaml"])
def test_tiny_fit_through_the_cli_lowers_the_loss(config, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(
        "fit",
        "--config",
        str(REPO / "configs" / config),
        "--data",
        str(REPO / "configs/data/digits.yaml"),
        "--model.init_args.network.image_size",
        "16",
        "--model.init_args.network.channel_mult",
        "[1, 2]",
        "--trainer.max_steps",
        "40",
        "--trainer.logger",
        str(REPO / "configs/logger/csv.yaml"),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--trainer.log_every_n_steps",
        "4",
        "--trainer.limit_val_batches",
        "0",
        "--trainer.callbacks",
        "[]",
        "--trainer.enable_checkpointing",
        "false",
        "--model.init_args.optimisation.lr",
        "2e-3",
        cwd=tmp_path,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err[-3000:]
    losses = _losses(next(tmp_path.rglob("metrics.csv")))
    assert len(losses) >= 10
    assert sum(losses[-4:]) < sum(losses[:4]), losses


def test_the_trained_code_carries_more_class_information_than_its_untrained_init(tiny_drl_checkpoint):
    """The random-feature control: an untrained encoder's codes of digits already score far above
    chance, so a trained code is judged against its own initialisation on the same images."""
    from conftest import digits, make_drl

    from diffrep.evaluation.features import encode_split
    from diffrep.evaluation.probes import linear_probe
    from diffrep.lightning_modules.loading import load_trained

    data = digits()
    data.setup("fit")

    def probe(model) -> float:
        train = encode_split(model, data.evaluation_split("train"), 1000)
        return linear_probe(*train, *encode_split(model, data.evaluation_split("val"), 100))["accuracy"]

    untrained, trained = probe(make_drl(ema={"decay": 0.9})), probe(load_trained(tiny_drl_checkpoint))
    assert untrained > 0.3  # random features are no chance-level control on digits
    assert trained > untrained + 0.05, (trained, untrained)  # 60 steps: 74% against 60% (100 images)
