"""A released checkpoint of an official code base loaded into a diffrep module: the raw weights into the
networks, the EMA weights into diffrep's EMA, strictly (one line and nothing loaded on any mismatch). A
method names its file layout (``official_layout``) and maps the file's names to its own (``official_state``).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from diffrep.checkpoints import CheckpointError
from diffrep.official_checkpoints import OfficialWeights, load_raw_and_ema, read_official, trained_settings


class OfficialLoadingMixin:
    """``load_official_checkpoint(path)`` for a module that names its file layout (``official_layout``) and
    maps a released state dict to its own names (``official_state(state, path)``, DRL's and Diff-AE's)."""

    official_layout: str
    official_state: Callable[[dict[str, Tensor], str], dict[str, Tensor]]
    official_prefixes: tuple[str, ...] = ("encoder.", "unet.")

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
