"""What a checkpoint carries besides the weights, so a resumed run continues the unbroken one: the
random streams (and each rank's own seed), the metadata a later stage rebuilds the model from, and a
refusal of a checkpoint of other settings. ``DiffusionBackboneMixin`` composes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from diffrep import rng
from diffrep.lightning_modules.api import check_state_shapes


class RunStateMixin:
    """Checkpoint and RNG hooks of a LightningModule; mix in before ``lightning.LightningModule``."""

    def checkpoint_metadata(self) -> dict[str, Any]:
        """What a later stage needs to rebuild this model without the training config."""
        return {"schedule": vars(self.schedule_config).copy(), "image_shape": list(self.image_shape)}  # type: ignore[attr-defined]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        checkpoint["diffrep"] = {"method": type(self).__name__, **self.checkpoint_metadata()}
        checkpoint["rng_states"] = rng.capture()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of other model settings with a clear message, then restore the RNG
        streams so a resumed run draws the same t and noise as an unbroken one."""
        check_state_shapes(self, checkpoint)
        if checkpoint.get("rng_states"):
            rng.restore(checkpoint["rng_states"])

    def on_train_start(self) -> None:
        """Each rank draws its own t and noise (a seed of its own, the same on every resume)."""
        trainer = self.trainer  # type: ignore[attr-defined]
        rng.reseed_for_rank(trainer.global_rank, trainer.world_size)

    @contextmanager
    def fixed_noise(self, seed: int) -> Iterator[None]:
        """Seeded t and noise for validation, without touching the training RNG stream."""
        with rng.forked(self.model_device()):  # type: ignore[attr-defined]
            torch.manual_seed(seed)
            yield
