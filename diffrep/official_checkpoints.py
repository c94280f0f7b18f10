"""The papers' released checkpoints, read without running their pickled code.

Two layouts (read from the official code):

- ``score_sde`` (DRL/VDRL, korabs-x/representation_score_based, score_sde's ``utils.save_checkpoint``):
  a dict of ``optimizer``, ``model``, ``ema``, ``step``. ``model`` keys carry the ``module.`` prefix of
  the ``DataParallel`` wrapper they were trained in. ``ema`` is ``{decay, num_updates, shadow_params}``
  with ``shadow_params`` an *unnamed* list in the order of the model's trainable parameters: it is
  paired here by that order, which is the state dict's order without its buffers (BatchNorm
  statistics, ``sigmas``) and without the frozen Fourier frequencies (the 1-D ``W`` of
  ``GaussianFourierProjection``; a NIN's ``W`` is 2-D and trainable). Everything not in the list comes
  from ``model``. The official restore copies the list with ``zip`` under ``strict=False``, so a
  short list loads there silently; here the count and every shape are checked.
- ``diffae`` (phizaz/diffae): a PyTorch Lightning 1.4 ``last.ckpt`` whose ``state_dict`` holds ``x_T``,
  ``model.*`` (raw) and ``ema_model.*`` (the evaluated weights; the latent variant adds
  ``conds_mean``/``conds_std`` and ``*.latent_net.*``) and whose ``hyper_parameters`` are the official
  ``TrainConfig``. It also pickles Lightning callbacks keyed by their classes, which
  ``torch.load(weights_only=True)`` refuses. ``read_foreign`` lists the file's foreign globals
  without loading it and lets the weights-only unpickler build an inert stand-in for each: no
  foreign code runs and no old ``pytorch_lightning`` is needed.

Both give ``OfficialWeights``: raw and EMA state dicts in the official names; each method maps the
names to its modules (``lightning_modules.official_loading.OFFICIAL_STATES``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffrep.checkpoints import CheckpointError
from diffrep.nets.ncsnpp_official import strip_data_parallel

LAYOUTS = ("score_sde", "diffae")
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


@dataclass
class OfficialWeights:
    """An official checkpoint's weights in its own names: ``raw`` (where training continues) and
    ``ema`` (the weights the paper evaluates), the layout, its step and its config where it has one."""

    layout: str
    raw: dict[str, Tensor]
    ema: dict[str, Tensor]
    step: int | None = None
    config: dict[str, Any] = field(default_factory=dict)


class ForeignObject:
    """An inert stand-in for a pickled object of a class diffrep does not import (a Lightning 1.4
    callback, a numpy scalar): it records what it was built from and runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def read_foreign(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``, with every global outside the weights-only allow-list
    replaced by its own ``ForeignObject`` subclass (so two foreign classes used as dict keys stay two
    keys). A missing or unreadable file is one line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official checkpoint {path} does not exist; pass the path of the released file")
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "Unsupported global" not in str(err):
                raise
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            stand_ins = [(type(name, (ForeignObject,), {"__module__": "diffrep.foreign"}), name) for name in names]
            with torch.serialization.safe_globals(stand_ins):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:  # torch raises many types for a broken file
        raise CheckpointError(f"cannot read official checkpoint {path}: {err}. The file is corrupt or truncated; "
                              "download it again") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def layout_of(checkpoint: dict[str, Any]) -> str | None:
    if {"model", "ema", "step"} <= checkpoint.keys() and isinstance(checkpoint["model"], dict):
        return "score_sde"
    state = checkpoint.get("state_dict")
    if isinstance(state, dict) and any(k.startswith("ema_model.") for k in state):
        return "diffae"
    return None


def read_official(path: str | Path, layout: str) -> OfficialWeights:
    """The weights of an official checkpoint of ``layout``; any other file is one line naming what it is."""
    checkpoint = read_foreign(path)
    found = layout_of(checkpoint)
    if found != layout:
        raise CheckpointError(f"{path} is {describe(checkpoint, found)}; this method reads {LAYOUT_NAMES[layout]}")
    return score_sde_weights(checkpoint, path) if layout == "score_sde" else diffae_weights(checkpoint)


LAYOUT_NAMES = {"score_sde": "a score_sde checkpoint (DRL/VDRL: a dict of model, ema, optimizer, step)",
                "diffae": "a Diff-AE Lightning checkpoint (state_dict with model.* and ema_model.*)"}


def describe(checkpoint: dict[str, Any], layout: str | None) -> str:
    if layout is not None:
        return LAYOUT_NAMES[layout]
    if "diffrep" in checkpoint:
        return (f"a diffrep checkpoint of {checkpoint['diffrep'].get('method')} (resume it with --ckpt_path, "
                "not official_checkpoint)")
    if any(k.startswith("layer1.") for k in checkpoint):
        return "an official DRL encoder_state_*.pth (the encoder alone; it starts LaplaceNet's encoder_checkpoint)"
    if "ema_denoise_fn" in checkpoint:
        return "an official PDAE checkpoint.pt (PDAE's dpm_checkpoint reads it)"
    return f"no official layout known here (top-level keys: {', '.join(map(str, list(checkpoint)[:6]))})"


def trainable_names(state: dict[str, Tensor]) -> list[str]:
    """The official model's ``requires_grad`` parameters in order, read off its state dict."""
    return [k for k, v in state.items()
            if not k.endswith(BUFFER_SUFFIXES) and k.rsplit(".", 1)[-1] != "sigmas"
            and not (k.endswith(".W") and v.ndim == 1)]


def score_sde_weights(checkpoint: dict[str, Any], path: str | Path) -> OfficialWeights:
    raw = strip_data_parallel(checkpoint["model"])
    shadows = checkpoint["ema"].get("shadow_params") if isinstance(checkpoint["ema"], dict) else None
    if not isinstance(shadows, list | tuple):
        raise CheckpointError(f"{path}: its ema entry has no shadow_params list; the file is not a score_sde "
                              "checkpoint or is damaged")
    names = trainable_names(raw)
    if len(names) != len(shadows):
        raise CheckpointError(f"{path}: the EMA holds {len(shadows)} tensors but the model has {len(names)} "
                              "trainable parameters; the file is incomplete (nothing was loaded)")
    for name, shadow in zip(names, shadows, strict=True):
        if tuple(shadow.shape) != tuple(raw[name].shape):
            raise CheckpointError(f"{path}: EMA tensor for {name} is {tuple(shadow.shape)}, the weight "
                                  f"{tuple(raw[name].shape)}; the EMA does not belong to this model")
    ema = {**raw, **dict(zip(names, shadows, strict=True))}
    return OfficialWeights("score_sde", raw, ema, step=int(checkpoint["step"]))


def diffae_weights(checkpoint: dict[str, Any]) -> OfficialWeights:
    state = checkpoint["state_dict"]
    raw = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    ema = {k.removeprefix("ema_model."): v for k, v in state.items() if k.startswith("ema_model.")}
    config = dict(checkpoint.get("hyper_parameters") or {})
    config.update({k: v for k, v in state.items() if k in ("conds_mean", "conds_std")})
    return OfficialWeights("diffae", raw, ema, step=checkpoint.get("global_step"), config=config)


#: Diff-AE's TrainConfig keys (a last.ckpt's hyper_parameters) -> the diffrep settings they set
DIFFAE_SETTINGS = {"img_size": "network.image_size", "net_ch": "network.base_channels",
                   "net_ch_mult": "network.channel_mult", "net_num_res_blocks": "network.num_res_blocks",
                   "net_attn": "network.attention_resolutions", "net_beatgans_embed_channels": "network.embed_channels",
                   "net_enc_channel_mult": "encoder.channel_mult", "net_enc_num_res_blocks": "encoder.num_res_blocks",
                   "style_ch": "code.latent_dim", "net_latent_num_hid_channels": "hidden (LatentDPM)",
                   "net_latent_layers": "num_layers (LatentDPM)"}


def trained_settings(config: dict[str, Any]) -> str:
    """The architecture settings an official checkpoint's own config records, each with the diffrep
    setting it corresponds to: what a width mismatch message tells the user to set."""
    found = [f"{key}={config[key]} ({ours})" for key, ours in DIFFAE_SETTINGS.items() if key in config]
    return ", ".join(found)


def paired_by_order(ours: dict[str, Tensor], theirs: list[tuple[str, Tensor]], what: str,
                    path: str | Path) -> dict[str, str]:
    """Our name -> their name for two modules built of the same layers in the same order (counts and
    every shape checked): how an encoder with other names is matched."""
    if len(ours) != len(theirs):
        raise CheckpointError(f"{path}: the {what} has {len(theirs)} tensors, this model's {len(ours)}; set the "
                              "config's widths and depths to the checkpoint's")
    for (name, tensor), (their_name, their_tensor) in zip(ours.items(), theirs, strict=True):
        if tensor.shape != their_tensor.shape:
            raise CheckpointError(f"{path}: {what} tensor {their_name} is {tuple(their_tensor.shape)}, this model's "
                                  f"{name} {tuple(tensor.shape)}; set the config's widths to the checkpoint's")
    return {name: their_name for name, (their_name, _) in zip(ours, theirs, strict=True)}


def load_exactly(module: torch.nn.Module, state: dict[str, Tensor], prefixes: tuple[str, ...],
                 path: str | Path) -> None:
    """Load ``state`` into ``module`` only if it gives every tensor under ``prefixes``, nothing else,
    each of the right shape: otherwise one line and nothing loaded."""
    own = {k: v for k, v in module.state_dict().items() if k.startswith(prefixes)}
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        problem = (f"{len(missing)} tensors missing (e.g. {missing[0]})" if missing else
                   f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        raise CheckpointError(f"{path}: {problem}; the checkpoint is another architecture than this config "
                              "builds (nothing was loaded)")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise CheckpointError(f"{path}: {key} is {tuple(value.shape)} in the checkpoint, {tuple(own[key].shape)} "
                                  "here; set the config's widths to the checkpoint's (nothing was loaded)")
    module.load_state_dict(state, strict=False)


def load_raw_and_ema(module: torch.nn.Module, raw: dict[str, Tensor], ema: dict[str, Tensor],
                     prefixes: tuple[str, ...], path: str | Path) -> None:
    """A released checkpoint's two sets of weights into ``module``: the raw ones into the network (where
    training continues), the EMA ones into ``module.ema``'s shadows (what evaluation uses); without an
    EMA there, the EMA weights are the network's. Strict, as ``load_exactly``: nothing loaded on a mismatch."""
    averaged = getattr(module, "ema", None)
    if averaged is None:
        load_exactly(module, ema, prefixes, path)
        return
    missing = [name for name in averaged.names if name.startswith(prefixes) and name not in ema]
    if missing:
        raise CheckpointError(f"{path}: its EMA weights lack {len(missing)} tensors (e.g. {missing[0]}); the file is "
                              "incomplete (nothing was loaded)")
    load_exactly(module, raw, prefixes, path)
    with torch.no_grad():
        for name in averaged.names:
            if name.startswith(prefixes):
                averaged.shadow(name).copy_(ema[name])
