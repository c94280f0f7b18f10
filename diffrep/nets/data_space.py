"""The data space a network sees: images in [-1, 1] (every diffrep model), or pixels in [0, 1]
standardised per channel, (x - mean) / std, as the official DRL code trains on CIFAR-10 (its
``datasets.py``). One module serves DRL (which also maps back and clamps there) and the classifier
LaplaceNet fine-tunes from a DRL encoder, so both read images the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from diffrep.errors import ConfigError


class ChannelStandardisation(nn.Module):
    """[-1, 1] images <-> per-channel standardised pixels. The statistics are buffers kept out of the
    state dict: the hyper-parameters of the model that holds this module carry them."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[:, None, None], persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return ((images + 1) / 2 - self.mean) / self.std

    def inverse(self, x: Tensor) -> Tensor:
        return (x * self.std + self.mean) * 2 - 1

    def bounds(self) -> tuple[Tensor, Tensor]:
        """The standardised image of the pixel range [0, 1], per channel."""
        return -self.mean / self.std, (1 - self.mean) / self.std


def channel_standardisation(mean: Sequence[float] | None, std: Sequence[float] | None,
                            channels: int | None = None) -> ChannelStandardisation | None:
    """The module for ``channel_mean``/``channel_std`` (None when both are unset); ``channels``, when
    known, is the number of values each must have."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ConfigError("a mean and a std standardise the data together; set both or neither")
    expected = channels if channels is not None else len(mean)
    if len(mean) != expected or len(std) != expected or min(std) <= 0:
        raise ConfigError(f"the standardisation's mean and std need {expected} values each (one per image channel), "
                          f"std > 0; got {list(mean)} and {list(std)}")
    return ChannelStandardisation(mean, std)
