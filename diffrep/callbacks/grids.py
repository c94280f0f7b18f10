"""Image grids during training: samples, reconstructions and interpolations.

Each calls only the module's public ``sample`` / ``reconstruct`` / ``interpolate``, so it works
for every method, and logs on rank 0 every ``every_n_epochs`` epochs and at the end of fit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import lightning as L
import torch
from torch import Tensor

from diffrep.callbacks.logging import log_image_grid


class _GridCallback(L.Callback, ABC):
    key = "grid"

    def __init__(self, every_n_epochs: int = 1, num_steps: int = 50, num_images: int = 16, seed: int = 0) -> None:
        self.every_n_epochs, self.num_steps, self.num_images, self.seed = every_n_epochs, num_steps, num_images, seed
        self.last_path = None

    @abstractmethod
    def make(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Tensor, int]:
        """Return the images of the grid (in [-1, 1]) and its row length."""

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            images, nrow = self.make(trainer, pl_module)
        self.last_path = log_image_grid(trainer, self.key, images, nrow)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0 and not trainer.should_stop:
            self._log(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module)


def _eval_images(trainer: L.Trainer, pl_module: L.LightningModule, n: int) -> Tensor:
    """The first n validation images (or training images when there is no validation set)."""
    datamodule = trainer.datamodule
    loader = datamodule.val_dataloader() if len(datamodule.splits.get("val", [])) else datamodule.train_dataloader()
    images = []
    for batch in loader:
        images.append(batch[0])
        if sum(len(b) for b in images) >= n:
            break
    return torch.cat(images)[:n].to(pl_module.device)


class SampleGrid(_GridCallback):
    """New images from noise with ``num_steps`` DDIM steps."""

    key = "samples"

    def make(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Tensor, int]:
        return pl_module.sample(self.num_images, num_steps=self.num_steps), 8


class ReconstructionGrid(_GridCallback):
    """Row pairs: originals, then their reconstructions."""

    key = "reconstructions"

    def make(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Tensor, int]:
        x0 = _eval_images(trainer, pl_module, self.num_images)
        recon = pl_module.reconstruct(x0, num_steps=self.num_steps)
        nrow = min(8, len(x0))
        rows = [t for i in range(0, len(x0), nrow) for t in (x0[i : i + nrow], recon[i : i + nrow])]
        return torch.cat(rows), nrow


class InterpolationGrid(_GridCallback):
    """Each row walks from one validation image to another."""

    key = "interpolations"

    def __init__(self, num_rows: int = 4, num_points: int = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_rows, self.num_points = num_rows, num_points

    def make(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Tensor, int]:
        x0 = _eval_images(trainer, pl_module, 2 * self.num_rows)
        rows = [pl_module.interpolate(x0[2 * i], x0[2 * i + 1], self.num_points, self.num_steps) for i in range(self.num_rows)]
        return torch.cat(rows), self.num_points
