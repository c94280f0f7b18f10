"""Settings written before they were grouped (``settings.py``): checkpoints are translated, configs refused.

A checkpoint a user trained is never lost: its saved hyper-parameters in the old flat form (``lr``,
``ema_decay``, ``score_net``, ...) are translated to the groups (``migrate_hparams``) wherever diffrep
rebuilds a module from them (``--ckpt_path``, later stages, encoder transfer). A config is the user's to
edit, so an old key in one ends the command with one line naming its new place (``old_setting``), rather
than being rewritten silently. Plain Python (no Lightning, no torch).
"""

from __future__ import annotations

import copy
from typing import Any

#: old flat setting -> its place now ("group.field"), for every method that took it
MOVED: dict[str, str] = {
    "lr": "optimisation.lr",
    "warmup_steps": "optimisation.warmup_steps",
    "warmup_from_zero": "optimisation.warmup_from_zero",
    "optimizer": "optimisation.optimizer",
    "ema_decay": "ema.decay",
    "ema_ramp": "ema.ramp",
    "channels_last": "fast.channels_last",
    "compile": "fast.compile",
    "timestep_grid": "sampling.timestep_grid",
    "sampler": "sampling.sampler",
    "weighting": "objective.weighting",
    "time_sampler": "objective.time_sampler",
    "gamma": "objective.gamma",
    "loss_reduction": "objective.reduction",
    "variational": "code.variational",
    "kl_weight": "code.kl_weight",
    "code_l1": "code.l1",
    "time_dependent": "code.time_dependent",
    "encode_times": "code.encode_times",
    "prior_momentum": "prior.momentum",
    "code_prior": "prior.kind",
    "prior_items": "prior.items",
    "latent_dpm_checkpoint": "prior.latent_dpm_checkpoint",
    "channel_mean": "standardise.mean",
    "channel_std": "standardise.std",
}
#: settings of the code-learning methods only (DPM keeps ``unet``; PDAE keeps ``latent_dim``)
MOVED_IN_CODE_METHODS: dict[str, str] = {
    "latent_dim": "code.latent_dim",
    "unet": "network",
    "score_net": "network.kind",
    "denoiser": "network.kind",
    "z_mode": "network.z_mode",
}
#: values whose spelling changed with their key
RENAMED_VALUES: dict[str, dict[Any, Any]] = {"loss_reduction": {"sum": "half_sum"},
                                             "denoiser": {"official": "beatgans"}}
#: LaplaceNet's flat settings -> its groups (``laplacenet_settings.py``)
LAPLACENET_MOVED: dict[str, str] = {
    "encoder_checkpoint": "start.checkpoint",
    "encoder_weights": "start.weights",
    "init_t": "start.init_t",
    "check_t": "choose_t.enabled",
    "t_candidates": "choose_t.candidates",
    "check_t_epochs": "choose_t.epochs",
    "knn": "pseudo_labels.knn",
    "graph_alpha": "pseudo_labels.alpha",
    "cg_iterations": "pseudo_labels.cg_iterations",
    "cg_tol": "pseudo_labels.cg_tol",
    "neighbour_search": "pseudo_labels.neighbour_search",
    "weight_pseudo_labels": "pseudo_labels.weighted",
    "mixup_alpha": "mixup.alpha",
    "mixup_warmup": "mixup.warmup",
    "mixup_semi": "mixup.semi",
    "lr": "optimisation.lr",
    "momentum": "optimisation.momentum",
    "nesterov": "optimisation.nesterov",
    "weight_decay": "optimisation.weight_decay",
    "rampdown_extra_epochs": "optimisation.rampdown_extra_epochs",
    "channel_mean": "standardise.mean",
    "channel_std": "standardise.std",
}
#: the latent DPM's flat settings -> its groups (``latent_settings.py``)
LATENT_MOVED: dict[str, str] = {
    "hidden": "network.hidden",
    "num_layers": "network.num_layers",
    "time_dim": "network.time_dim",
    "dropout": "network.dropout",
    "beta": "schedule.beta_end",
    "num_timesteps": "schedule.num_timesteps",
    "lr": "optimisation.lr",
    "weight_decay": "optimisation.weight_decay",
    "ema_decay": "ema.decay",
    "clip_codes": "sampling.clip_codes",
    "latent_grid": "sampling.latent_grid",
    "latent_steps": "sampling.latent_steps",
    "timestep_grid": "sampling.timestep_grid",
}
#: the trained baselines' flat settings -> their groups (their code settings stay flat)
BASELINE_MOVED: dict[str, str] = {"lr": "optimisation.lr"}
CODE_METHODS = ("DRL", "VDRL", "DiffAE")
BASELINES = ("Autoencoder", "VAE", "SimCLR")
METHODS = ("DPM", "PDAE", *CODE_METHODS, "LaplaceNet", "LatentDPM", *BASELINES)


def method_of(class_path: str | None) -> str | None:
    """The diffrep method a class path names (``diffrep.lightning_modules.DRL`` -> 'DRL'), or None."""
    name = str(class_path or "").rsplit(".", 1)[-1]
    return name if name in METHODS else None


def new_place(method: str, key: str) -> str | None:
    """Where an old flat setting of ``method`` lives now ("group.field"), or None if it did not move."""
    if method not in METHODS:
        return None
    if key == "encoder_kwargs" and method != "DPM":
        return "encoder"
    if method == "LaplaceNet":
        return LAPLACENET_MOVED.get(key)
    if method in BASELINES:
        return BASELINE_MOVED.get(key)
    if method == "LatentDPM":
        return LATENT_MOVED.get(key)
    if method in CODE_METHODS and key in MOVED_IN_CODE_METHODS:
        return MOVED_IN_CODE_METHODS[key]
    return MOVED.get(key)


def old_setting(method: str, keys: list[str]) -> tuple[str, str] | None:
    """The first of ``keys`` (a config's ``model.init_args``) in the old form, with its new place."""
    for key in keys:
        place = new_place(method, key)
        if place is not None:
            return key, place
    return None


def is_old(method: str, hparams: dict[str, Any]) -> bool:
    return old_setting(method, list(hparams)) is not None


def migrate_hparams(method: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """Saved hyper-parameters of ``method`` in the grouped form (unchanged when they already are)."""
    if not is_old(method, hparams):
        return hparams
    old = copy.deepcopy(hparams)
    new: dict[str, Any] = {}
    encoder_kwargs = old.pop("encoder_kwargs", None)
    if "encoder" in old:
        new["encoder"] = with_settings(old.pop("encoder"), encoder_kwargs)
    network: dict[str, Any] = {}
    for key, value in old.items():
        place = new_place(method, key)
        value = RENAMED_VALUES.get(key, {}).get(value, value) if isinstance(value, str) else value
        if place is None:
            new[key] = value
        elif key == "optimizer" and value is None:  # the old spelling of the default, Adam
            continue
        elif place == "network":
            network.update(value or {})
        elif place.startswith("network."):
            if value is not None:
                network[place.split(".", 1)[1]] = value
        else:
            group, field = place.split(".", 1)
            new.setdefault(group, {})[field] = value
    if method in CODE_METHODS or network:
        new["network"] = network
    if method in (*CODE_METHODS, "LaplaceNet"):
        std = new.get("standardise")
        if std is not None and (std.get("mean") is None or std.get("std") is None):
            new["standardise"] = None
    return new


def with_settings(encoder: Any, kwargs: dict[str, Any] | None) -> Any:
    """An old ``encoder`` + ``encoder_kwargs`` pair as one ``encoder`` setting."""
    if not kwargs:
        return encoder
    if isinstance(encoder, dict):  # a plugin's init_args took the kwargs' place already
        return encoder
    if "." in str(encoder):  # a plugin given as a class path
        return {"class_path": encoder, "init_args": dict(kwargs)}
    return {"kind": encoder, **kwargs}
