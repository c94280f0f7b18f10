"""Send images and tables to whichever Lightning logger is configured, and to the run folder."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch import Tensor
from torchvision.utils import make_grid, save_image


def run_dir(trainer: L.Trainer) -> Path:
    """The folder of this run (``trainer.default_root_dir``), where PNGs and reports go."""
    return Path(trainer.default_root_dir)


def log_image_grid(trainer: L.Trainer, key: str, images: Tensor, nrow: int = 8) -> Path:
    """Log a grid of images in [-1, 1] to every logger and save it as PNG; return the file path."""
    grid = make_grid(((images.detach().float().cpu() + 1) / 2).clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    path = run_dir(trainer) / "images" / f"{key.replace('/', '_')}_step{trainer.global_step:07d}.png"
    if trainer.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        for logger in trainer.loggers:
            _send(logger, key, grid, trainer.global_step)
    return path


def _send(logger: object, key: str, grid: Tensor, step: int) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    if isinstance(logger, WandbLogger):
        logger.log_image(key=key, images=[grid.permute(1, 2, 0).numpy()], step=step)
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, grid, step)


def log_metric_table(trainer: L.Trainer, key: str, metrics: dict[str, float]) -> None:
    """A (metric, value) table of one evaluation for W&B, beside the scalars (rank 0 only)."""
    from lightning.pytorch.loggers import WandbLogger

    if not trainer.is_global_zero or not metrics:
        return
    rows = [[name, float(value)] for name, value in metrics.items()]
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key=key, columns=["metric", "value"], data=rows, step=trainer.global_step)


def figure_to_image(fig: object) -> Tensor:
    """A matplotlib ``Figure`` as a (1, 3, H, W) image in [-1, 1]."""
    import io

    import numpy as np
    import torch
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    image = torch.from_numpy(np.asarray(Image.open(buffer).convert("RGB")).copy())
    return image.permute(2, 0, 1)[None].float() / 127.5 - 1


def log_table(trainer: L.Trainer, key: str, columns: list[str], rows: list[list], line: tuple[str, str] | None = None
              ) -> None:
    """A table to W&B (rank 0 only); ``line=(x, y)`` also draws it as a W&B line plot of those columns."""
    from lightning.pytorch.loggers import WandbLogger

    if not trainer.is_global_zero or not rows:
        return
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key=key, columns=columns, data=rows, step=trainer.global_step)
            if line:
                import wandb

                table = wandb.Table(columns=columns, data=rows)
                logger.experiment.log({f"{key}_plot": wandb.plot.line(table, *line, title=key)},
                                      step=trainer.global_step)
