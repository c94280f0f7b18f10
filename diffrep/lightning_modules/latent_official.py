"""A released Diff-AE ``*_latent`` checkpoint as a latent DPM: the autoencoder it was trained on (built from
the diffrep config of the same architecture, ``base_config``) and its latent net with the code statistics
it was trained with. The latent DPM (``latent_dpm.py``) calls these two when given ``official_checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from diffrep.checkpoints import CheckpointError
from diffrep.errors import ConfigError
from diffrep.lightning_modules.diffae import DiffAE
from diffrep.lightning_modules.loading import in_its_ema_weights
from diffrep.lightning_modules.migration import old_setting
from diffrep.official_checkpoints import OfficialWeights, load_raw_and_ema


def official_diffae(weights: OfficialWeights, path: str, base_config: str | None) -> DiffAE:
    """The autoencoder of a released Diff-AE file (read once, ``weights``), built from ``base_config`` (a
    diffrep config of the same architecture, e.g. configs/diffae_ffhq128.yaml: its ``model.init_args``),
    its EMA weights in for good."""
    import yaml

    if not base_config or not Path(base_config).is_file():
        raise ConfigError(f"an official Diff-AE checkpoint needs base_config: the diffrep config of its autoencoder "
                          f"(e.g. configs/diffae_ffhq128.yaml); got {base_config!r}")
    model = yaml.safe_load(Path(base_config).read_text()).get("model", {})
    if not str(model.get("class_path", "")).endswith("DiffAE"):
        raise ConfigError(f"base_config {base_config} configures {model.get('class_path')!r}, not a DiffAE")
    old = old_setting("DiffAE", list(model.get("init_args", {})))
    if old:
        raise ConfigError(f"base_config {base_config} sets model.init_args.{old[0]}, which is now "
                          f"model.init_args.{old[1]}")
    base = DiffAE(**{**model.get("init_args", {}), "fast": None, "official_checkpoint": None})
    base.load_official_weights(weights, path)
    return in_its_ema_weights(base)


def load_official_latent(latent_dpm: torch.nn.Module, weights: OfficialWeights, path: str) -> None:
    """A released Diff-AE ``*_latent`` last.ckpt into ``latent_dpm``: its ``latent_net`` (raw into the MLP
    ``net``, EMA into diffrep's EMA) and its code statistics ``conds_mean``/``conds_std`` (into the buffers
    ``z_mean``/``z_std``, so fit does not recompute them)."""
    raw, ema = ({f"net.{k.removeprefix('latent_net.')}": v for k, v in state.items() if k.startswith("latent_net.")}
                for state in (weights.raw, weights.ema))
    if not raw or "conds_mean" not in weights.config:
        raise CheckpointError(f"{path} has no latent DPM (latent_net, conds_mean): it is a Diff-AE autoencoder "
                              "alone; the released *_latent checkpoints carry one")
    load_raw_and_ema(latent_dpm, raw, ema, ("net.",), path)
    latent_dpm.z_mean.copy_(weights.config["conds_mean"].reshape(-1))
    latent_dpm.z_std.copy_(weights.config["conds_std"].reshape(-1))
