"""A classifier on top of any diffrep encoder: backbone -> features (N, D) -> linear head -> logits.

What LaplaceNet fine-tunes. The backbone is either DRL's time-conditioned WRN read at its learned
noise level (``TimeWideResNet`` with no code head: the 64k-d pooled features, what the official
LaplaceNet WRN returns as its features) or a static encoder E(x0) (``StaticCode``). The head is a
plain ``nn.Linear`` at PyTorch's default initialisation, as the official WRN's ``linear``.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.nets.data_space import channel_standardisation
from diffrep.nets.wrn import TimeWideResNet


class StaticCode(nn.Module):
    """E(x0) -> code; of a variational encoder (mean, log-variance) only the mean half."""

    def __init__(self, encoder: nn.Module, code_dim: int) -> None:
        super().__init__()
        self.encoder, self.code_dim = encoder, code_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)[:, : self.code_dim]


class FeatureClassifier(nn.Module):
    """``forward(x) -> (logits, features)``; images are standardised per channel first when
    ``channel_mean``/``channel_std`` are given (the data space a DRL encoder was trained in)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int,
                 channel_mean: list[float] | None = None, channel_std: list[float] | None = None) -> None:
        super().__init__()
        self.backbone, self.feature_dim = backbone, feature_dim
        self.linear = nn.Linear(feature_dim, num_classes)
        self.standardisation = channel_standardisation(channel_mean, channel_std)

    def features(self, x: Tensor) -> Tensor:
        if self.standardisation is not None:  # images in [-1, 1] -> (pixel in [0, 1] - mean) / std
            x = self.standardisation(x)
        if isinstance(self.backbone, TimeWideResNet):
            return self.backbone(x, None)  # at the learned noise level sigmoid(param_t)
        return self.backbone(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.linear(h), h


def logit(t: float) -> float:
    """param_t for the noise level t: the official surgery sets log(t / (1 - t))."""
    if not 0 < t < 1:
        raise ConfigError(f"init_t is a fraction of the noise range strictly between 0 and 1, got {t}")
    return math.log(t / (1 - t))


def wrn_architecture(state: dict[str, Tensor]) -> dict[str, int]:
    """in_channels, depth and widen_factor of a ``TimeWideResNet`` from its state dict (diffrep names)."""
    try:
        conv1 = state["conv1.weight"]
        blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        width = state["blocks.0.conv1.weight"].shape[0] // 16
    except (KeyError, ValueError) as err:
        raise ConfigError(f"not a time-conditioned WRN state dict (missing {err})") from None
    return {"in_channels": int(conv1.shape[1]), "depth": 2 * blocks + 4, "widen_factor": int(width)}


def load_matching(module: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """Load every entry of ``state`` whose name and shape the module has; the rest of the module
    keeps its initialisation (the official LaplaceNet surgery, which drops size-mismatched keys).
    Returns the module's names left at their initialisation."""
    own = module.state_dict()
    taken = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    module.load_state_dict(taken, strict=False)
    return sorted(set(own) - set(taken))
