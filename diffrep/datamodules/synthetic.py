"""Random images of a chosen shape: proves a config end to end (shapes, steps, checkpoints)
without its data set, e.g. ``benchmarks/paper_dry_run.py`` on the paper configs."""

from __future__ import annotations

import torch
from torch import Tensor

from diffrep.datamodules.base import ImageDataModule


class SyntheticImageDataModule(ImageDataModule):
    """``num_images`` seeded uniform-noise uint8 images (and ``num_test`` more) with random labels
    of ``num_classes`` classes. Nothing is read from disk."""

    def __init__(self, channels: int = 3, num_images: int = 64, num_test: int = 16, num_classes: int = 10,
                 **kwargs) -> None:
        kwargs.setdefault("val_size", 8)
        super().__init__(**kwargs)
        self.channels, self.num_images, self.num_test, self.num_classes = channels, num_images, num_test, num_classes

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        n = self.num_images if split == "train" else self.num_test
        generator = torch.Generator().manual_seed(self.seed + (split == "test"))
        shape = (n, self.channels, self.image_size, self.image_size)
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        return images, torch.randint(0, self.num_classes, (n,), generator=generator)
