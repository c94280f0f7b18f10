"""Which network LaplaceNet fine-tunes, and from which weights.

``classifier_from`` builds a ``FeatureClassifier`` (``diffrep.nets.classifier``) from one of:

- a diffrep checkpoint of a method with an encoder (DRL, VDRL, PDAE, Diff-AE, the autoencoder,
  the VAE, SimCLR): its module is rebuilt from the saved hyper-parameters and its encoder taken,
  with the raw training weights (``weights='raw'``, what the official DRL code hands LaplaceNet:
  run_lib.py saves ``encoder_state_*.pth`` from the raw encoder, its EMA save commented out) or
  the EMA weights (``weights='ema'``);
- an official DRL ``encoder_state_*.pth`` (the WRN's state dict in score_sde's names, raw weights);
- nothing: a randomly initialised encoder (``encoder``: a name, ``{kind: NAME, <its settings>}`` or your
  own ``{class_path, init_args}``, as the methods take it).

DRL's time-conditioned WRN gets the official surgery (LaplaceNet's main.py): a fresh WRN with no
code head, every key of matching name and size loaded, the others (a VDRL head, a conv1 of
another channel count) left at their initialisation, and ``param_t`` set to logit(init_t), so the
network reads its features at t = sigmoid(param_t), a parameter learned during fine-tuning. The
official code matches keys by position; the score_sde and LaplaceNet WRNs list them in the same
order, so by name is the same match. Any other encoder is a static E(x0) whose code (the mean of
a variational one) feeds the head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffrep.checkpoints import CheckpointError, read_checkpoint
from diffrep.errors import ConfigError
from diffrep.lightning_modules.laplacenet_settings import WEIGHTS
from diffrep.lightning_modules.loading import encoder_classes, rebuild
from diffrep.nets.classifier import FeatureClassifier, StaticCode, load_matching, logit, wrn_architecture
from diffrep.nets.encoders import WRN_KINDS, build_encoder
from diffrep.nets.ncsnpp_official import wrn_state_dict
from diffrep.nets.wrn import TimeWideResNet


def time_wrn_from_state(state: dict[str, Tensor], init_t: float) -> tuple[TimeWideResNet, list[str]]:
    """The official surgery on a TimeWideResNet state dict: (network, names left at initialisation)."""
    wrn = TimeWideResNet(**wrn_architecture(state), out_dim=None)
    left = load_matching(wrn, state)
    with torch.no_grad():
        wrn.param_t.fill_(logit(init_t))
    return wrn, [k for k in left if k != "param_t"]


def is_official_encoder_state(checkpoint: dict[str, Any]) -> bool:
    return "time_embedding.param_t" in checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values())


def classifier_from(
    checkpoint_path: str | None, num_classes: int, weights: str = "raw", init_t: float = 0.5,
    encoder: str | dict[str, Any] = "wrn28_2", latent_dim: int = 128, in_channels: int = 1, image_size: int = 32,
    channel_mean: list[float] | None = None, channel_std: list[float] | None = None,
) -> tuple[FeatureClassifier, dict[str, Any]]:
    """(classifier, a record of where its weights came from: source, weights, keys left at init)."""
    if weights not in WEIGHTS:
        raise ConfigError(f"unknown start.weights {weights!r}; choose 'raw' (the official choice) or 'ema'")
    if checkpoint_path is None:
        backbone, dim = _fresh_encoder(encoder, latent_dim, in_channels, image_size, init_t)
        return (FeatureClassifier(backbone, dim, num_classes, channel_mean, channel_std),
                {"source": "random init", "weights": None, "left_at_init": []})
    path = Path(checkpoint_path)
    checkpoint = read_checkpoint(path, what="encoder checkpoint")
    if is_official_encoder_state(checkpoint):
        if weights == "ema":
            raise ConfigError(f"{path} is an official DRL encoder_state file, which holds the raw weights only "
                              "(run_lib.py saves no EMA encoder); use start.weights: raw")
        official_head = {k.removeprefix("linear."): v for k, v in checkpoint.items() if k.startswith("linear.")}
        wrn, left = time_wrn_from_state(wrn_state_dict(checkpoint), init_t)
        classifier = FeatureClassifier(wrn, wrn.feature_dim, num_classes, channel_mean, channel_std)
        left += ["linear." + k for k in load_matching(classifier.linear, official_head)]
        return classifier, {"source": f"official DRL encoder state {path}", "weights": "raw", "left_at_init": left}
    if "diffrep" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} holds no encoder: give the last.ckpt of a method with one "
                              f"({', '.join(encoder_classes())}) or an official DRL encoder_state_*.pth")
    module = rebuild(checkpoint, path, encoder_classes(), "the encoder checkpoint")
    if weights == "ema":
        if getattr(module, "ema", None) is None:
            raise ConfigError(f"{path} ({type(module).__name__}) has no EMA weights; use start.weights: raw")
        module.ema.copy_to_model()
    if getattr(module, "time_head", None) is not None:
        raise ConfigError(f"{path} holds a time-dependent code made by a TimeCodeHead over a static encoder; "
                          "LaplaceNet fine-tunes the time-conditioned WRN (encoder: wrn) or a static code")
    source_encoder: nn.Module = module.encoder
    standardise = getattr(module, "standardisation", None)  # the data space the encoder was trained in
    mean, std = (channel_mean, channel_std) if standardise is None else (
        standardise.mean.flatten().tolist(), standardise.std.flatten().tolist())
    record = {"source": f"{type(module).__name__} checkpoint {path}", "weights": weights, "left_at_init": []}
    if isinstance(source_encoder, TimeWideResNet):
        wrn, record["left_at_init"] = time_wrn_from_state(source_encoder.state_dict(), init_t)
        return FeatureClassifier(wrn, wrn.feature_dim, num_classes, mean, std), record
    code_dim = int(getattr(module, "latent_dim", None) or source_encoder.latent_dim)
    return FeatureClassifier(StaticCode(source_encoder, code_dim), code_dim, num_classes, mean, std), record


def _fresh_encoder(encoder: str | dict[str, Any], latent_dim: int, in_channels: int, image_size: int,
                   init_t: float) -> tuple[nn.Module, int]:
    kind = encoder.get("kind") if isinstance(encoder, dict) else encoder
    if kind in WRN_KINDS:  # the time-conditioned WRN LaplaceNet fine-tunes, at logit(init_t)
        wrn = build_encoder(encoder, in_channels, image_size, None)
        with torch.no_grad():
            wrn.param_t.fill_(logit(init_t))
        return wrn, wrn.feature_dim
    return StaticCode(build_encoder(encoder, in_channels, image_size, latent_dim), latent_dim), latent_dim
