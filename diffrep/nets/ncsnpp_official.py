"""An official DRL NCSN++ state dict (korabs-x/representation_score_based) as diffrep's modules take it.

The official ``NCSNpp`` holds its WRN encoder inside (``encoder.*``); diffrep keeps the encoder
beside the score net (``DRL.encoder``, ``diffrep.nets.wrn.TimeWideResNet``), whose module names
differ (``layer<s>.<i>`` -> ``blocks.<k>``, ``Dense_0`` -> ``time_bias``, ``bn1`` -> ``bn``,
``linear_latent`` -> ``head``, the Fourier ``W`` -> ``frequencies``). The score net's names are the
official ones already. Dropped: the ``sigmas`` buffers (unused with the Fourier embedding) and the
WRN's classification head ``linear`` (never used for the code).
"""

from __future__ import annotations

import re

from torch import Tensor

from diffrep.errors import ConfigError

TOP_LEVEL = {"time_embedding.all_modules.0.W": "time_embedding.frequencies",
             "time_embedding.all_modules.1.": "time_embedding.net.0.",
             "time_embedding.all_modules.2.": "time_embedding.net.2.",
             "time_embedding.param_t": "param_t", "bn1.": "bn.", "linear_latent.": "head."}
IN_BLOCK = {"Dense_0.": "time_bias.", "shortcut.0.": "shortcut."}


def wrn_state_dict(official: dict[str, Tensor]) -> dict[str, Tensor]:
    """The official Wide_ResNet's state dict (keys without ``encoder.``) in TimeWideResNet's names."""
    per_stage = 1 + max(int(m.group(1)) for k in official if (m := re.match(r"layer\d\.(\d+)\.", k)))
    out = {}
    for key, value in official.items():
        if key.startswith("linear."):
            continue
        block = re.match(r"layer(\d)\.(\d+)\.(.*)", key)
        if block:
            rest = block.group(3)
            for old, new in IN_BLOCK.items():
                rest = new + rest.removeprefix(old) if rest.startswith(old) else rest
            key = f"blocks.{(int(block.group(1)) - 1) * per_stage + int(block.group(2))}.{rest}"
        else:
            for old, new in TOP_LEVEL.items():
                if key.startswith(old):
                    key = new + key.removeprefix(old)
                    break
        out[key] = value
    return out


def official_wrn_names(ours: dict[str, Tensor]) -> dict[str, Tensor]:
    """TimeWideResNet's state dict in the official Wide_ResNet's names (the inverse of
    ``wrn_state_dict``, less the classification head it drops): to write official-layout files."""
    per_stage = (1 + max(int(m.group(1)) for k in ours if (m := re.match(r"blocks\.(\d+)\.", k)))) // 3
    top = {new: old for old, new in TOP_LEVEL.items()}
    out = {}
    for key, value in ours.items():
        block = re.match(r"blocks\.(\d+)\.(.*)", key)
        if block:
            k, rest = int(block.group(1)), block.group(2)
            for old, new in IN_BLOCK.items():
                rest = old + rest.removeprefix(new) if rest.startswith(new) else rest
            key = f"layer{k // per_stage + 1}.{k % per_stage}.{rest}"
        else:
            for new, old in top.items():
                if key.startswith(new):
                    key = old + key.removeprefix(new)
                    break
        out[key] = value
    return out


def strip_data_parallel(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Keys without the ``module.`` prefix ``DataParallel``/DDP add (all keys or none carry it)."""
    if state and all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def split_official_state_dict(official: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(encoder state for TimeWideResNet, score-net state for NCSNpp) from an official NCSNpp state dict
    (the ``module.`` prefix of a ``DataParallel`` save is taken off)."""
    official = strip_data_parallel(official)
    encoder = {k.removeprefix("encoder."): v for k, v in official.items() if k.startswith("encoder.")}
    if not encoder:
        raise ConfigError("this NCSN++ state dict has no encoder.* tensors: it was trained without an encoder "
                          "(score_sde's training.include_encoder false), so it holds no DRL code")
    net = {k: v for k, v in official.items()
           if not k.startswith("encoder.") and k not in ("sigmas", "decoder.sigmas")}
    return wrn_state_dict(encoder), net
