"""Image grids during training: samples, reconstructions and interpolations.

Each calls only the module's public ``sample`` / ``reconstruct`` / ``interpolate`` (and
``manipulate`` for edits), so it works for every method, and logs every ``every_n_epochs``
epochs, at the end of fit and at the end of ``diffrep test``.
"""

from __future__ import annotations

from abc import abstractmethod

import lightning as L
import torch
from torch import Tensor

from diffrep.callbacks.base import EvaluationCallback
from diffrep.callbacks.logging import log_image_grid
from diffrep.evaluation.features import encode_split
from diffrep.lightning_modules.api import UnsupportedOperation
from diffrep.manipulation import fit_code_direction


class _GridCallback(EvaluationCallback):
    key = "grid"

    def __init__(self, every_n_epochs: int = 1, num_steps: int = 50, num_images: int = 16, seed: int = 0,
                 timestep_grid: str | None = None) -> None:
        super().__init__(every_n_epochs, seed, timestep_grid=timestep_grid)
        self.num_steps, self.num_images = num_steps, num_images
        self.last_path = None

    @abstractmethod
    def make(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Tensor, int]:
        """Return the images of the grid (in [-1, 1]) and its row length."""

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict[str, float]:
        """Every rank draws the same seeded grid (no collectives), rank 0 writes it; under
        ``diffrep test`` the files are test_*.png."""
        images, nrow = self.make(trainer, pl_module)
        self.last_path = log_image_grid(trainer, ("test/" if stage == "test" else "") + self.key, images, nrow)
        return {}


def _eval_batch(trainer: L.Trainer, pl_module: L.LightningModule, n: int) -> tuple[Tensor, Tensor]:
    """The first n validation images and labels (training ones when there is no validation set)."""
    datamodule = trainer.datamodule
    loader = datamodule.val_dataloader() if len(datamodule.splits.get("val", [])) else datamodule.train_dataloader()
    images, labels = [], []
    for batch in loader:
        images.append(batch[0])
        labels.append(batch[1])
        if sum(len(b) for b in images) >= n:
            break
    return torch.cat(images)[:n].to(pl_module.device), torch.cat(labels)[:n].to(pl_module.device)


def _eval_images(trainer: L.Trainer, pl_module: L.LightningModule, n: int) -> Tensor:
    return _eval_batch(trainer, pl_module, n)[0]


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
        rows = [
            pl_module.interpolate(x0[2 * i], x0[2 * i + 1], self.num_points, self.num_steps)
            for i in range(self.num_rows)
        ]
        return torch.cat(rows), self.num_points


class ManipulationGrid(_GridCallback):
    """Edits towards class ``positive_class``: one row per image, one column per edit scale.

    The direction comes from a linear classifier on ``num_codes`` training codes
    (``classifier``: ``logistic`` one-vs-rest, or the official multi-attribute ``bce`` head; see
    ``diffrep.manipulation``); the images are validation images of other classes, inverted with
    ``inversion_steps`` (default ``num_steps``; official: 500) and decoded with ``num_steps``
    (official: 200).
    """

    key = "manipulations"

    def __init__(
        self,
        positive_class: int = 0,
        scales: tuple[float, ...] = (-0.6, -0.3, 0.0, 0.3, 0.6),
        num_codes: int = 2000,
        inversion_steps: int | None = None,
        classifier: str = "logistic",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.positive_class, self.scales, self.num_codes = positive_class, list(scales), num_codes
        self.inversion_steps, self.classifier = inversion_steps, classifier

    def make(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Tensor, int]:
        if not hasattr(pl_module, "manipulate"):
            raise UnsupportedOperation(f"{type(pl_module).__name__} cannot decode an edited code")
        pl_module.check_editable()  # before encoding thousands of codes
        codes, labels = encode_split(pl_module, trainer.datamodule.evaluation_split("train"), self.num_codes)
        direction = fit_code_direction(codes, labels, self.positive_class, classifier=self.classifier)
        x0, y = _eval_batch(trainer, pl_module, 4 * self.num_images)
        x0 = x0[y != self.positive_class][: self.num_images]
        edits = pl_module.manipulate(x0, direction, self.scales, self.num_steps, self.inversion_steps)  # (S, B, ...)
        rows = torch.cat([x0[:, None], edits.transpose(0, 1)], dim=1)  # original, then the edits
        return rows.flatten(0, 1), len(self.scales) + 1
