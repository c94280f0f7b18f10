"""A user's own denoiser, encoder, optimiser and learning-rate schedule by class_path, with no diffrep code
changed: they train through `diffrep fit`, land in the checkpoint as plain settings and rebuild from it; bad
paths are one line."""

import functools

import pytest
import torch
from conftest import digits, make_drl, make_pdae, quiet_trainer, run_cli
from user_plugins import ScaledObjective, TinyDenoiser, TinyEncoder

from diffrep.errors import ConfigError
from diffrep.lightning_modules.loading import load_trained

CONFIG = """
seed_everything: 0
model:
  class_path: diffrep.lightning_modules.DRL
  init_args:
    network: {class_path: user_plugins.TinyDenoiser, init_args: {in_channels: 1, image_size: 16, width: 8}}
    encoder: {class_path: user_plugins.TinyEncoder, init_args: {width: 8}}
    code: {latent_dim: 4}
    objective: {class_path: user_plugins.ScaledObjective, init_args: {scale: 3.0, weighting: sigma2}}
    optimisation:
      lr: 0.01
      optimizer: {class_path: torch.optim.SGD, init_args: {momentum: 0.9}}
      lr_schedule: {class_path: torch.optim.lr_scheduler.StepLR, init_args: {step_size: 1, gamma: 0.5}}
    ema: {decay: null}
data:
  class_path: diffrep.datamodules.DigitsDataModule
  init_args: {image_size: 16, batch_size: 16, val_size: 100, subset: 64}
trainer:
  default_root_dir: {root}
  max_steps: 2
  logger: false
  enable_progress_bar: false
  limit_val_batches: 0
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {save_last: true}
"""


def test_a_users_network_encoder_optimiser_and_schedule_train_through_the_cli_and_rebuild_from_the_checkpoint(
        tmp_path, capsys, monkeypatch):
    config = tmp_path / "mine.yaml"
    config.write_text(CONFIG.replace("{root}", str(tmp_path / "run")))
    seen = {}
    original = torch.optim.SGD.__init__

    @functools.wraps(original)  # the signature diffrep reads stays SGD's
    def spy(self, params, **kwargs):
        seen.update(kwargs)
        original(self, params, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "__init__", spy)
    code, _, err = run_cli("fit", "--config", config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-2000:]
    assert seen == {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}  # offered lr and weight decay; SGD has no betas
    last = tmp_path / "run/checkpoints/last.ckpt"
    model = load_trained(last)
    assert isinstance(model.encoder, TinyEncoder) and model.encoder.net[0].out_channels == 8
    saved = torch.load(last, map_location="cpu", weights_only=True)  # plain settings: no pickled classes
    assert saved["hyper_parameters"]["encoder"] == {"class_path": "user_plugins.TinyEncoder", "init_args": {"width": 8}}
    trained = saved["state_dict"]["encoder.net.0.weight"]
    torch.testing.assert_close(model.encoder.net[0].weight, trained)
    assert model.encode(torch.zeros(2, 1, 16, 16)).shape == (2, 4)
    # the user's denoiser, offered the code's width, and rebuilt from its saved spec
    assert isinstance(model.unet, TinyDenoiser) and model.unet.condition.in_features == 4 + 1
    assert saved["hyper_parameters"]["network"] == {"class_path": "user_plugins.TinyDenoiser",
                                                    "init_args": {"in_channels": 1, "image_size": 16, "width": 8}}
    torch.testing.assert_close(model.unet.out.weight, saved["state_dict"]["unet.out.weight"])
    # the user's objective, saved as its class path and fields
    assert isinstance(model.objective, ScaledObjective) and model.objective.scale == 3.0
    assert saved["hyper_parameters"]["objective"]["class_path"] == "user_plugins.ScaledObjective"
    # StepLR halved the rate after each of the 2 optimiser steps, and its state is in the checkpoint
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.01 * 0.5 ** 2)
    assert saved["lr_schedulers"][0]["last_epoch"] == 2


def test_a_class_path_alone_takes_encoder_kwargs_as_its_arguments():
    model = make_drl(code={"latent_dim": 4}, encoder={"kind": "user_plugins.TinyEncoder", **{"width": 12}})
    assert isinstance(model.encoder, TinyEncoder) and model.encoder.net[0].out_channels == 12


@pytest.mark.parametrize("encoder, message", [
    ({"class_path": "user_plugins.Missing"}, "cannot be imported"),
    ({"class_path": "nowhere_module.Encoder"}, "cannot be imported"),
    ({"class_path": "user_plugins.NotAModule"}, "not a subclass of torch.nn.modules.module.Module"),
    ({"class_path": "user_plugins.TinyEncoder", "init_args": {"depth": 3}}, "could not be built"),
    ({"clas_path": "user_plugins.TinyEncoder"}, "takes {class_path"),
])
def test_a_bad_plugin_is_one_line_naming_what_to_fix(encoder, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{")):
        make_drl(encoder=encoder, code={"latent_dim": 4})


def test_an_optimiser_that_is_not_one_is_refused_before_training():
    with pytest.raises(ConfigError, match="not a subclass of torch.optim"):
        make_drl(optimisation={"optimizer": {"class_path": "torch.nn.Linear"}})
    with pytest.raises(ConfigError, match="'adam', 'adamw' or your own"):
        make_drl(optimisation={"optimizer": "lamb"})


def test_a_users_objective_replaces_the_loss_and_rebuilds_from_the_saved_settings():
    spec = {"class_path": "user_plugins.ScaledObjective", "init_args": {"scale": 3.0, "weighting": "sigma2"}}
    plain, scaled = make_drl(objective={"weighting": "sigma2"}), make_drl(objective=spec)
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    t = torch.full((4,), 0.5)
    losses = []
    for model in (plain, scaled):
        torch.manual_seed(1)  # the same noise for both
        losses.append(model.loss(x0, t))
    torch.testing.assert_close(losses[1], 3.0 * losses[0])
    saved = scaled.hparams["objective"]
    assert saved == {"class_path": "user_plugins.ScaledObjective",
                     "init_args": {"weighting": "sigma2", "time_sampler": "uniform", "gamma": None, "norm": "l2",
                                   "reduction": "mean", "scale": 3.0}}
    assert make_drl(objective=saved).objective == scaled.objective
    with pytest.raises(ConfigError, match="not a subclass of diffrep.diffusion.objective.DenoisingObjective"):
        make_drl(objective={"class_path": "user_plugins.TinyEncoder"})


def test_a_users_network_trains_as_a_dpm_and_pdae_refuses_it_by_name(tmp_path):
    from diffrep.checkpoints import CheckpointError
    from diffrep.lightning_modules import DPM

    spec = {"class_path": "user_plugins.TinyDenoiser", "init_args": {"in_channels": 1, "image_size": 16, "width": 8}}
    torch.manual_seed(0)
    model = DPM(unet=spec, ema={"decay": None}, optimisation={"lr": 1e-2})
    assert isinstance(model.unet, TinyDenoiser) and model.unet.z_dim == 0  # a DPM's network is offered no code
    assert model.sample(2, num_steps=2).shape == (2, 1, 16, 16)
    trainer = quiet_trainer(tmp_path, max_steps=2)
    trainer.fit(model, datamodule=digits(batch_size=16, subset=64))
    trainer.save_checkpoint(tmp_path / "dpm.ckpt")
    assert torch.load(tmp_path / "dpm.ckpt", weights_only=True)["diffrep"]["unet"] == spec
    with pytest.raises(CheckpointError, match="DPM on your own network .*user_plugins.TinyDenoiser.*U-Net DPM"):
        make_pdae(tmp_path / "dpm.ckpt")


def test_the_warm_up_hands_over_to_the_users_schedule_at_its_last_step():
    from diffrep.lightning_modules.optimisation import OptimiserSettings

    settings = OptimiserSettings(lr=1.0, warmup_steps=2, lr_schedule={
        "class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 1, "gamma": 0.5}})
    built = settings.build([torch.nn.Parameter(torch.zeros(1))], fused=False)
    optimizer, scheduler = built["optimizer"], built["lr_scheduler"]["scheduler"]
    assert built["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.5, 1.0, 1.0, 0.5, 0.25])  # warm-up (step + 1) / 2, then StepLR from lr


@pytest.mark.parametrize("optimisation, message", [
    ({"lr_schedule": {"class_path": "torch.nn.Linear"}}, "not a subclass of torch.optim.lr_scheduler"),
    ({"lr_schedule": {"class_path": "torch.optim.lr_scheduler.StepLR"}, "lr_schedule_interval": "batch"},
     "'step' or 'epoch'"),
    ({"lr_schedule": {"class_path": "torch.optim.lr_scheduler.StepLR"}, "lr_schedule_interval": "epoch",
      "warmup_steps": 10}, "keep lr_schedule_interval 'step'"),
])
def test_a_bad_schedule_is_refused_when_the_method_is_built(optimisation, message):
    with pytest.raises(ConfigError, match=message):
        make_drl(optimisation=optimisation)


@pytest.mark.parametrize("network, message", [
    ({"class_path": "user_plugins.TinyDenoiser", "init_args": {"in_channels": 1}}, "add image_size to its init_args"),
    ({"class_path": "user_plugins.NotAModule", "init_args": {"in_channels": 1, "image_size": 16}},
     "not a subclass of torch.nn"),
])
def test_a_users_network_without_its_image_shape_or_not_a_module_is_one_line(network, message):
    with pytest.raises(ConfigError, match=message):
        make_drl(network=network, code={"latent_dim": 4})


def test_the_readme_shows_the_plugin_it_tests():
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    assert "class TinyEncoder(nn.Module):" in readme and "class_path: my_encoders.TinyEncoder" in readme
