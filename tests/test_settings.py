"""Settings in groups (``lightning_modules/settings.py``), the translation of checkpoints saved before them
and the refusal of configs written before them (``lightning_modules/migration.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, run_cli, tiny_unet_config

from diffrep.errors import ConfigError
from diffrep.lightning_modules import DRL, VDRL, DiffAE
from diffrep.lightning_modules.loading import load_trained
from diffrep.lightning_modules.migration import migrate_hparams, old_setting
from diffrep.lightning_modules.settings import OptimiserSettings
from diffrep.nets.ncsnpp import NCSNpp

#: hyper-parameters as a DRL checkpoint of the paper config held them before the grouping (flat, 2026-12-05)
OLD_PAPER_DRL = {
    "unet": {"in_channels": 1, "image_size": 16, "base_channels": 8, "channel_mult": [1, 2, 2], "num_res_blocks": 1,
             "attention_resolutions": [8], "dropout": 0.0},
    "schedule": {"kind": "ve", "sigma_min": 0.01, "sigma_max": 50.0},
    "encoder": "wrn", "encoder_kwargs": {"depth": 10, "widen_factor": 1}, "latent_dim": 16, "z_mode": None,
    "variational": True, "kl_weight": 1e-5, "code_l1": 0.0, "loss_reduction": "sum", "time_dependent": True,
    "encode_times": [0.1, 0.5], "weighting": "sigma2", "time_sampler": "uniform", "lr": 2e-4, "warmup_steps": 5000,
    "ema_decay": 0.999, "ema_ramp": True, "warmup_from_zero": True, "prior_momentum": 0.99, "code_prior": "fitted",
    "prior_items": 10000, "latent_dpm_checkpoint": None, "channels_last": False, "compile": False,
    "timestep_grid": "linspace", "score_net": "ncsnpp", "sampler": "pc", "channel_mean": None, "channel_std": None,
    "official_checkpoint": None, "optimizer": None,
}


def test_old_flat_hyper_parameters_become_the_groups_that_rebuild_the_same_model():
    new = migrate_hparams("VDRL", OLD_PAPER_DRL)
    assert new["network"] == {**OLD_PAPER_DRL["unet"], "kind": "ncsnpp"}
    assert new["encoder"] == {"kind": "wrn", "depth": 10, "widen_factor": 1}
    assert new["code"] == {"latent_dim": 16, "variational": True, "kl_weight": 1e-5, "l1": 0.0, "time_dependent": True,
                           "encode_times": [0.1, 0.5]}
    assert new["objective"] == {"reduction": "half_sum", "weighting": "sigma2", "time_sampler": "uniform"}
    assert new["optimisation"] == {"lr": 2e-4, "warmup_steps": 5000, "warmup_from_zero": True}  # None: Adam
    assert new["ema"] == {"decay": 0.999, "ramp": True} and new["sampling"] == {"timestep_grid": "linspace",
                                                                               "sampler": "pc"}
    assert new["standardise"] is None and new["prior"]["kind"] == "fitted"
    model = VDRL(**new)
    assert isinstance(model.unet, NCSNpp) and model.objective.reduction == "half_sum" and model.variational
    assert model.optimisation.warmup_from_zero and model.ema_settings.ramp and model.sampler == "pc"
    assert model.encode_times == [0.1, 0.5] and model.encoder.takes_noise_level
    assert migrate_hparams("VDRL", dict(model.hparams)) == dict(model.hparams)  # today's form is left alone


def flat_checkpoint(trained: Path, path: Path) -> Path:
    """``trained`` (conftest's tiny DRL) with the flat hyper-parameters the previous diffrep saved for it."""
    checkpoint = torch.load(trained, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"] = {
        "unet": tiny_unet_config().as_dict(), "schedule": checkpoint["hyper_parameters"]["schedule"],
        "encoder": "conv", "encoder_kwargs": {"channels": [16, 32], "num_groups": 8, "num_heads": 1},
        "latent_dim": 8, "lr": 2e-3, "ema_decay": 0.9, "z_mode": None, "score_net": "unet", "optimizer": None,
        "_class_path": "diffrep.lightning_modules.DRL", "_instantiator": "lightning.pytorch.cli.instantiate_module"}
    torch.save(checkpoint, path)
    return path


def test_a_checkpoint_saved_before_the_grouping_loads_with_its_weights(tiny_drl_checkpoint, tmp_path):
    """``load_trained`` (later stages, LaplaceNet's start) reads the flat settings of the previous diffrep."""
    loaded = load_trained(flat_checkpoint(tiny_drl_checkpoint, tmp_path / "old.ckpt"))
    today = load_trained(tiny_drl_checkpoint)
    assert loaded.latent_dim == 8 and loaded.optimisation.lr == 2e-3 and loaded.ema is None  # EMA weights in
    torch.testing.assert_close(loaded.state_dict(), today.state_dict())


def test_validate_reads_an_old_checkpoints_settings(tiny_drl_checkpoint, tmp_path, capsys, monkeypatch):
    """``--ckpt_path``: Lightning rebuilds the model from the checkpoint's settings, translated first."""
    path = flat_checkpoint(tiny_drl_checkpoint, tmp_path / "old.ckpt")
    code, out, err = run_cli("validate", "--config", REPO / "configs/drl.yaml", "--data",
                             REPO / "configs/data/digits.yaml", "--ckpt_path", path, "--trainer.limit_val_batches", "1",
                             "--trainer.logger", "false", "--trainer.callbacks", "[]", "--evaluate", "false",
                             "--trainer.default_root_dir", tmp_path / "run", "--trainer.enable_progress_bar", "false",
                             cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "val/loss" in out


@pytest.mark.parametrize(("where", "key", "place", "config"), [
    ("file", "lr", "optimisation.lr", "drl.yaml"),
    ("file", "score_net", "network.kind", "drl.yaml"),
    ("command line", "ema_decay", "ema.decay", "drl.yaml"),
    ("command line", "time_sampler", "objective.time_sampler", "drl.yaml"),
    ("file", "encoder_checkpoint", "start.checkpoint", "laplacenet.yaml"),
    ("command line", "mixup_alpha", "mixup.alpha", "laplacenet.yaml"),
    ("file", "lr", "optimisation.lr", "baselines/autoencoder.yaml"),
    ("command line", "encoder_kwargs", "encoder", "baselines/simclr.yaml"),
    ("file", "hidden", "network.hidden", "pdae_latent.yaml"),
])
def test_a_config_in_the_old_form_stops_with_the_new_key(where, key, place, config, tmp_path, capsys, monkeypatch):
    config = yaml.safe_load((REPO / "configs" / config).read_text())
    extra = []
    if where == "file":
        config["model"]["init_args"][key] = "x"
    else:
        extra = [f"--model.init_args.{key}", "0.5"]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli("fit", "--config", tmp_path / "old.yaml", *extra, cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 2
    assert f"init_args.{key}, which is now " in err and f"init_args.{place} " in err
    assert len(err.strip().splitlines()) == 1, err


def test_old_settings_are_named_per_method():
    assert old_setting("PDAE", ["latent_dim", "encoder", "lr"]) == ("lr", "optimisation.lr")  # PDAE keeps latent_dim
    assert old_setting("DRL", ["latent_dim"]) == ("latent_dim", "code.latent_dim")
    assert old_setting("DPM", ["unet", "schedule"]) is None  # DPM keeps its unet
    assert old_setting("DiffAE", ["denoiser"]) == ("denoiser", "network.kind")
    assert old_setting("LaplaceNet", ["encoder", "check_t"]) == ("check_t", "choose_t.enabled")
    assert old_setting("LaplaceNet", ["encoder", "latent_dim", "seed"]) is None  # LaplaceNet keeps these
    assert old_setting("VAE", ["latent_dim", "kl_weight", "lr"]) == ("lr", "optimisation.lr")  # baselines keep these


#: hyper-parameters as a LaplaceNet checkpoint held them before the grouping (a claims.py run, 2026-12-06)
OLD_LAPLACENET = {
    "num_classes": 10, "encoder_checkpoint": None, "encoder_weights": "ema", "init_t": 0.3, "encoder": "wrn",
    "encoder_kwargs": {"depth": 10, "widen_factor": 1}, "latent_dim": 128, "in_channels": 1, "image_size": 16,
    "channel_mean": None, "channel_std": None, "check_t": True, "t_candidates": [0.2, 0.8], "check_t_epochs": 2,
    "knn": 10, "graph_alpha": 0.9, "cg_iterations": 20, "cg_tol": 0.01, "neighbour_search": "exact",
    "mixup_alpha": 0.5, "mixup_warmup": True, "mixup_semi": False, "weight_pseudo_labels": True, "lr": 0.1,
    "momentum": 0.8, "nesterov": False, "weight_decay": 0.0, "rampdown_extra_epochs": 5, "seed": 3,
}


def test_old_laplacenet_settings_become_its_groups_and_the_same_network():
    from diffrep.lightning_modules import LaplaceNet

    new = migrate_hparams("LaplaceNet", OLD_LAPLACENET)
    assert new["start"] == {"checkpoint": None, "weights": "ema", "init_t": 0.3}
    assert new["choose_t"] == {"enabled": True, "candidates": [0.2, 0.8], "epochs": 2}
    assert new["pseudo_labels"] == {"knn": 10, "alpha": 0.9, "cg_iterations": 20, "cg_tol": 0.01,
                                    "neighbour_search": "exact", "weighted": True}
    assert new["mixup"] == {"alpha": 0.5, "warmup": True, "semi": False}
    assert new["optimisation"] == {"lr": 0.1, "momentum": 0.8, "nesterov": False, "weight_decay": 0.0,
                                   "rampdown_extra_epochs": 5}
    assert new["encoder"] == {"kind": "wrn", "depth": 10, "widen_factor": 1} and new["standardise"] is None
    model = LaplaceNet(**new)
    assert model.classifier.backbone.param_t.item() == pytest.approx(math.log(0.3 / 0.7))
    assert model.settings["choose_t"].candidates == (0.2, 0.8) and model.hparams.seed == 3
    assert migrate_hparams("LaplaceNet", dict(model.hparams)) == dict(model.hparams)


def test_a_group_given_in_part_keeps_the_methods_own_defaults():
    drl, diffae = DRL(optimisation={"warmup_steps": 7}), DiffAE(optimisation={"warmup_steps": 7})
    assert (drl.optimisation.lr, diffae.optimisation.lr) == (2e-4, 1e-4)  # each method's default lr
    assert drl.objective.weighting == "sigma2" and diffae.objective.weighting == "uniform"
    assert VDRL().variational and not DRL().variational
    with pytest.raises(ConfigError, match="optimisation has no setting 'learning_rate'; it has optimizer, lr"):
        DRL(optimisation={"learning_rate": 1.0})
    with pytest.raises(ConfigError, match="network .kind unet. has no setting 'widht'"):
        DRL(network={"widht": 3})
    assert isinstance(DRL(optimisation=OptimiserSettings(lr=3.0)).optimisation, OptimiserSettings)


def test_the_command_line_sets_one_field_of_a_group(tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli("fit", "--config", REPO / "configs/drl.yaml", "--model.init_args.optimisation.lr", "0.125",
                           "--model.init_args.code.latent_dim", "3", "--print_config", cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 0
    init = yaml.safe_load(out)["model"]["init_args"]
    assert init["optimisation"]["lr"] == 0.125 and init["optimisation"]["warmup_steps"] == 100  # the config's
    assert init["code"]["latent_dim"] == 3 and init["code"]["variational"] is False


#: hyper-parameters as an Autoencoder checkpoint held them before its optimiser settings were grouped
OLD_AUTOENCODER = {"image_shape": [1, 16, 16], "latent_dim": 8, "encoder": "conv",
                   "encoder_kwargs": {"channels": [16, 32], "num_groups": 8, "num_heads": 1},
                   "decoder_channels": [32, 16], "num_groups": 8, "variational": False, "kl_weight": 0.01, "lr": 3e-3}


def test_an_old_autoencoder_checkpoint_rebuilds_the_same_network_with_its_learning_rate():
    from diffrep.lightning_modules import Autoencoder

    new = migrate_hparams("Autoencoder", OLD_AUTOENCODER)
    assert new["encoder"] == {"kind": "conv", "channels": [16, 32], "num_groups": 8, "num_heads": 1}
    assert new["optimisation"] == {"lr": 3e-3} and "lr" not in new and "encoder_kwargs" not in new
    model = Autoencoder(**new)
    assert model.optimisation.lr == 3e-3 and model.encoder.net[0].out_channels == 16
    assert migrate_hparams("Autoencoder", dict(model.hparams)) == dict(model.hparams)


def test_an_old_latent_dpm_checkpoint_gets_its_groups_and_a_latent_config_keeps_the_constant_schedule(
        tmp_path, capsys, monkeypatch):
    from test_cli import print_config

    old = {"model_checkpoint": "runs/pdae/checkpoints/last.ckpt", "hidden": 256, "num_layers": 6, "time_dim": 64,
           "dropout": 0.0, "beta": 0.01, "num_timesteps": 500, "lr": 2e-3, "weight_decay": 0.01, "ema_decay": 0.995,
           "norm_items": None, "clip_codes": False, "latent_grid": "linspace", "latent_steps": None,
           "timestep_grid": None, "official_checkpoint": None, "base_config": None}
    new = migrate_hparams("LatentDPM", old)
    assert new["network"] == {"hidden": 256, "num_layers": 6, "time_dim": 64, "dropout": 0.0}
    assert new["schedule"] == {"beta_end": 0.01, "num_timesteps": 500}
    assert new["optimisation"] == {"lr": 2e-3, "weight_decay": 0.01} and new["ema"] == {"decay": 0.995}
    assert new["sampling"] == {"clip_codes": False, "latent_grid": "linspace", "latent_steps": None,
                               "timestep_grid": None}
    from diffrep.lightning_modules.latent_settings import latent_schedule

    schedule = latent_schedule(new["schedule"])  # the fields given, over the official constant schedule
    assert (schedule.beta_schedule, schedule.beta_end, schedule.num_timesteps) == ("constant", 0.01, 500)
    printed = yaml.safe_load(print_config("fit", "--config", REPO / "configs/pdae_latent.yaml", cwd=tmp_path,
                                          capsys=capsys, monkeypatch=monkeypatch))["model"]["init_args"]
    schedule = latent_schedule(printed["schedule"])  # what LatentDPM builds from the parsed config
    assert (schedule.beta_schedule, schedule.beta_end) == ("constant", 0.008)


@pytest.mark.parametrize(("config", "group", "field", "value"), [
    ("vdrl.yaml", "code", "variational", True),  # VDRL's own default; the config gives latent_dim, kl_weight
    ("pdae.yaml", "objective", "weighting", "pdae"),  # PDAE's lambda_t; the config gives gamma
    ("drl.yaml", "ema", "decay", 0.995),  # the config's own value
])
def test_a_group_given_in_part_in_a_config_file_keeps_the_methods_own_defaults(config, group, field, value, tmp_path,
                                                                              capsys, monkeypatch):
    """jsonargparse hands the partial group over as the config's dict (``dict`` first in the annotation),
    and the method lays it over its own defaults; with the class first the class's defaults won."""
    import importlib

    from test_cli import print_config

    from diffrep.lightning_modules.settings import grouped_settings

    model = yaml.safe_load(print_config("fit", "--config", REPO / "configs" / config, cwd=tmp_path, capsys=capsys,
                                        monkeypatch=monkeypatch))["model"]
    module, _, name = model["class_path"].rpartition(".")
    method = getattr(importlib.import_module(module), name)
    settings = grouped_settings(method, **{group: model["init_args"][group]})
    assert getattr(settings[group], field) == value
