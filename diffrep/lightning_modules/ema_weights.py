"""The EMA of a method's weights as one piece of its training: built from ``EMASettings``, updated right
after each optimiser step, swapped in for validation and evaluation, never saved in place of the
training weights. ``DiffusionBackboneMixin`` composes it; the averaging itself is ``diffrep.ema.EMA``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from diffrep.ema import EMA
from diffrep.lightning_modules.settings import EMASettings


class EMAWeightsMixin:
    """EMA hooks of a LightningModule; mix in before ``lightning.LightningModule``."""

    ema: EMA | None  # a module: no class default, which would hide the registered one
    ema_settings: EMASettings
    _ema_stack: ExitStack | None = None

    def setup_ema(self) -> None:
        """Average every trainable parameter of this module (frozen ones are excluded)."""
        if getattr(self, "ema", None) is not None:
            self.ema.unwatch()
        if self.ema_settings.decay is not None:
            self.ema = EMA(self, self.ema_settings.decay, ramp=self.ema_settings.ramp)  # type: ignore[arg-type]

    @contextmanager
    def ema_scope(self, enabled: bool = True) -> Iterator[None]:
        """Evaluate with the EMA weights (the ones a paper reports) unless disabled."""
        if self.ema is None or not enabled or self._ema_stack is not None:
            yield
            return
        with self.ema.average_parameters():
            yield

    @contextmanager
    def inference(self) -> Iterator[None]:
        """Eval mode, EMA weights, no autograd; the previous mode is restored afterwards."""
        was_training = self.training  # type: ignore[attr-defined]
        self.train(False)  # type: ignore[attr-defined]
        try:
            with self.ema_scope(), torch.no_grad():
                yield
        finally:
            self.train(was_training)  # type: ignore[attr-defined]

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Step, then update the EMA at once: callbacks' ``on_train_batch_end`` (checkpoints
        among them) run before the module's, so an EMA updated there would be saved one step
        stale and a resumed run would drift from an unbroken one."""
        super().optimizer_step(*args, **kwargs)  # type: ignore[misc]
        if self.ema is not None:
            self.ema.update()

    def on_validation_epoch_start(self) -> None:
        """Validate under the EMA weights (swapped in for the whole epoch, out at its end)."""
        if self.ema is not None:
            self._ema_stack = ExitStack()
            self._ema_stack.enter_context(self.ema.average_parameters())

    def on_validation_epoch_end(self) -> None:
        if self._ema_stack is not None:
            self._ema_stack.close()
            self._ema_stack = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Saved while validation has the EMA weights in (a stop signal mid-validation): the checkpoint
        keeps the training weights, or a resumed run would train on from the EMA."""
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        if self.ema is not None and self.ema.swapped_out is not None:
            checkpoint["state_dict"].update({name: w.clone() for name, w in self.ema.swapped_out.items()})
