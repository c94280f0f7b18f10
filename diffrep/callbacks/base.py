"""The schedule every evaluation callback shares: every N epochs (or N steps), at fit end, at test end."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from contextlib import nullcontext

import lightning as L
import torch

from diffrep import rng
from diffrep.callbacks.logging import log_metric_table
from diffrep.diffusion.schedule import TIMESTEP_GRIDS
from diffrep.errors import ConfigError
from diffrep.lightning_modules.api import UnsupportedOperation


def last_epoch(trainer: L.Trainer) -> bool:
    """Whether the epoch now ending is the fit's last (its max_epochs or max_steps is reached)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return (max_epochs is not None and max_epochs >= 0 and trainer.current_epoch + 1 >= max_epochs) or (
        max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps)


class EvaluationCallback(L.Callback, ABC):
    """Calls ``evaluate`` every ``every_n_epochs`` training epochs and, if set, every
    ``every_n_steps`` optimizer steps (both skipped when the run is stopping or at its last
    step, since fit end follows at once), at the end of fit and at the end of test. A
    model without the operation the callback needs (``UnsupportedOperation``) is skipped with a
    warning.

    Every rank calls ``evaluate`` (work that is split over ranks needs all of them); scalars
    it returns are logged by rank 0 to every logger (and as a table to W&B) and kept in ``last``
    for the test report.
    Evaluation draws from its own seeded RNG, so it never shifts the training noise stream.
    ``timestep_grid`` (``linspace`` or ``official``) sets the DDIM step grid of this evaluation's
    decoding and inversion; None keeps the model's own (``NoiseSchedule.ddim_levels``).

    Held-out images come from the **validation** split during fit and from the test split only
    under ``diffrep test`` (``held_out``): a fit-time curve is what people choose settings from,
    and those must never be chosen on test data.
    """

    def __init__(self, every_n_epochs: int = 1, seed: int = 0, every_n_steps: int | None = None,
                 timestep_grid: str | None = None) -> None:
        if every_n_epochs < 1:
            raise ConfigError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if every_n_steps is not None and every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1 or null, got {every_n_steps}")
        if timestep_grid is not None and timestep_grid not in TIMESTEP_GRIDS:
            raise ConfigError(f"unknown timestep_grid {timestep_grid!r}; choose one of {list(TIMESTEP_GRIDS)}")
        self.every_n_epochs, self.every_n_steps, self.seed = every_n_epochs, every_n_steps, seed
        self.timestep_grid = timestep_grid
        self.last: dict[str, float] = {}
        self._last_step_run = -1

    @abstractmethod
    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict[str, float]:
        """Run the evaluation ('fit' or 'test'); return scalars to log (may be empty)."""

    @staticmethod
    def held_out_name(stage: str) -> str:
        """'test' under ``diffrep test``, 'val' during fit."""
        return "test" if stage == "test" else "val"

    def held_out(self, trainer: L.Trainer, stage: str):
        """The held-out images of this stage (``held_out_name``), as evaluation reads them."""
        split = self.held_out_name(stage)
        data = trainer.datamodule
        dataset = data.evaluation_split(split)
        if len(dataset) == 0:
            raise ConfigError(f"{type(self).__name__} scores the {split} split during {stage}, and this data set's "
                              f"{split} split is empty; set --data.init_args.val_size (e.g. 0.1) or remove the "
                              "callback")
        return dataset

    def run(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.sanity_checking:
            return
        device = pl_module.device
        grid_scope = getattr(pl_module, "timestep_grid_scope", None)
        with rng.forked(device), (
            grid_scope(self.timestep_grid) if grid_scope else nullcontext()
        ):
            torch.manual_seed(self.seed)
            try:
                results = self.evaluate(trainer, pl_module, stage)
            except UnsupportedOperation as err:  # e.g. a grid of samples for a model that cannot sample
                warnings.warn(f"{type(self).__name__} skipped: {err}", stacklevel=1)
                results = {}
        self.last = results
        if results and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(results, step=trainer.global_step)
            log_metric_table(trainer, f"tables/{type(self).__name__}", results)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """On schedule, except at the fit's last epoch: the fit-end evaluation of the same step follows
        (after the model's own end-of-training work, e.g. DRL's prior refit), and one is enough."""
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0 and not trainer.should_stop \
                and not last_epoch(trainer):
            self.run(trainer, pl_module, "fit")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_step_run = trainer.global_step  # a resumed run already evaluated its start step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        step, n = trainer.global_step, self.every_n_steps
        if (
            not n
            or step == 0
            or step % n
            or step == self._last_step_run
            or step == trainer.max_steps
            or trainer.should_stop
        ):
            return  # (the step repeats under gradient accumulation)
        self._last_step_run = step
        self.run(trainer, pl_module, "fit")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run(trainer, pl_module, "fit")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run(trainer, pl_module, "test")
