"""A released checkpoint of an official code base loaded into a diffrep module: the raw weights into the
networks, the EMA weights into diffrep's EMA, strictly (one line and nothing loaded on any mismatch). A
method names its file layout (``official_layout``); the layout's function here maps the file's names to the
module's (``OFFICIAL_STATES``), so the method files hold no checkpoint plumbing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from diffrep.checkpoints import CheckpointError
from diffrep.errors import ConfigError
from diffrep.nets.beatgans import BeatGANsAutoencUNet
from diffrep.nets.ncsnpp import NCSNpp
from diffrep.nets.ncsnpp_official import split_official_state_dict
from diffrep.official_checkpoints import (
    OfficialWeights,
    load_raw_and_ema,
    paired_by_order,
    read_official,
    trained_settings,
)


def score_sde_state(module: Any, state: dict[str, Tensor], path: str) -> dict[str, Tensor]:
    """An official DRL/VDRL NCSN++ state dict (with its WRN encoder) in the module's names; the unused
    reconstruction decoder is dropped unless the module builds one."""
    if not isinstance(module.unet, NCSNpp) or not getattr(module.encoder, "takes_noise_level", False):
        raise ConfigError("official DRL/VDRL checkpoints hold NCSN++ with the time-conditioned WRN: set "
                          "network.kind: ncsnpp and encoder: wrn28_2 (configs/drl_cifar10.yaml, vdrl_cifar10.yaml)")
    encoder, net = split_official_state_dict(state)
    if not hasattr(module.unet, "decoder"):
        net = {k: v for k, v in net.items() if not k.startswith("decoder.")}
    return {**{f"encoder.{k}": v for k, v in encoder.items()}, **{f"unet.{k}": v for k, v in net.items()}}


def diffae_state(module: Any, state: dict[str, Tensor], path: str) -> dict[str, Tensor]:
    """An official BeatGANsAutoencModel state dict in the module's names: the denoiser's names are the
    official ones; the semantic encoder's are paired in order (same layers, shapes checked). A latent
    variant's ``latent_net.*`` (its latent DPM) is left out."""
    if not isinstance(module.unet, BeatGANsAutoencUNet):
        raise ConfigError("official Diff-AE checkpoints hold the BeatGANs denoiser: set network.kind: beatgans "
                          "(configs/diffae_ffhq128.yaml)")
    encoder = [(k, v) for k, v in state.items() if k.startswith("encoder.")]
    pairs = paired_by_order(module.encoder.state_dict(), encoder, "semantic encoder", path)
    out = {f"encoder.{ours}": state[theirs] for ours, theirs in pairs.items()}
    out.update({f"unet.{k}": v for k, v in state.items() if not k.startswith(("encoder.", "latent_net."))})
    return out


#: a released file layout -> its names in a diffrep module (``official_checkpoints.read_official`` reads the file)
OFFICIAL_STATES: dict[str, Callable[[Any, dict[str, Tensor], str], dict[str, Tensor]]] = {
    "score_sde": score_sde_state, "diffae": diffae_state}


class OfficialLoadingMixin:
    """``load_official_checkpoint(path)`` for a module that names its file layout (``official_layout``, a key
    of ``OFFICIAL_STATES``)."""

    official_layout: str
    official_prefixes: tuple[str, ...] = ("encoder.", "unet.")

    def official_state(self, state: dict[str, Tensor], path: str) -> dict[str, Tensor]:
        """A released state dict in this module's names (its layout's function)."""
        return OFFICIAL_STATES[self.official_layout](self, state, path)

    def load_official_checkpoint(self, path: str) -> None:
        """A released checkpoint (``official_layout``), read and loaded (``load_official_weights``)."""
        self.load_official_weights(read_official(path, self.official_layout), path)

    def load_official_weights(self, weights: OfficialWeights, path: str) -> None:
        """A released checkpoint's raw weights into the networks and its EMA weights into diffrep's EMA
        (``load_raw_and_ema``). Strict: one line and nothing loaded on any mismatch, naming the
        checkpoint's own config where it has one."""
        try:
            raw, ema = self.official_state(weights.raw, path), self.official_state(weights.ema, path)
            load_raw_and_ema(self, raw, ema, self.official_prefixes, path)
        except CheckpointError as err:
            settings = trained_settings(weights.config)
            if not settings:
                raise
            raise CheckpointError(f"{err}; the checkpoint's own config: {settings}") from None
