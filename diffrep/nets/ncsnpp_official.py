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


def split_official_state_dict(official: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(encoder state for TimeWideResNet, score-net state for NCSNpp) from an official NCSNpp state dict."""
    encoder = {k.removeprefix("encoder."): v for k, v in official.items() if k.startswith("encoder.")}
    net = {k: v for k, v in official.items()
           if not k.startswith("encoder.") and k not in ("sigmas", "decoder.sigmas")}
    return wrn_state_dict(encoder), net
