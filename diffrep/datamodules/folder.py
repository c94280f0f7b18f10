"""A folder of images (CelebA, FFHQ, your own), decoded into memory: centre-cropped to a square,
then resized.

Images are found recursively. If every image sits in a sub-folder, the sub-folder names become
class labels (sorted); otherwise labels are -1. There is no official test split, so ``test_size``
images (seeded) are held out as one. Every rank decodes the whole folder at start-up, which is
right for thousands of images and wrong for CelebA or FFHQ: past ``max_in_memory_gb`` the module
says so and names ``diffrep prepare`` (``diffrep.datamodules.streaming``) instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from PIL import UnidentifiedImageError
from torch import Tensor

from diffrep.datamodules.base import DataError, ImageDataModule
from diffrep.datamodules.images import IMAGE_EXTENSIONS, Crop, list_images, load_square
from diffrep.datamodules.splits import hold_out


class ImageFolderDataModule(ImageDataModule):
    def __init__(self, root: str | None = None, channels: int = 3, test_size: int | float = 0.1,
                 crop: Crop = "centre", max_in_memory_gb: float = 2.0, **kwargs) -> None:
        super().__init__(root=root, **kwargs)
        if root is None:
            raise DataError("ImageFolderDataModule needs --data.init_args.root pointing at your image folder")
        self.channels, self.test_size, self.crop = channels, test_size, crop
        self.max_in_memory_gb = max_in_memory_gb
        self._arrays: tuple[Tensor, Tensor] | None = None

    def _read_all(self) -> tuple[Tensor, Tensor]:
        root = Path(self.root)
        if not root.is_dir():
            raise DataError(f"image folder {root} does not exist")
        paths, labels, self.class_names = list_images(root)
        if not paths:
            raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {root}")
        self._say_if_too_big(len(paths))
        images, broken = [], []
        for path in paths:
            try:
                images.append(load_square(path, self.image_size, self.channels, self.crop))
            except (OSError, UnidentifiedImageError):
                broken.append(str(path))
        if broken:
            listed = "\n  ".join(broken[:20])
            raise DataError(f"{len(broken)} unreadable image(s); remove or replace them:\n  {listed}")
        return torch.from_numpy(np.stack(images)), torch.tensor(labels)

    def in_memory_gb(self, num_images: int) -> float:
        """The uint8 arrays one rank holds (the decoded folder and its split copies: twice the pixels)."""
        return 2 * num_images * self.channels * self.image_size**2 / 2**30

    def _say_if_too_big(self, num_images: int) -> None:
        size = self.in_memory_gb(num_images)
        if size > self.max_in_memory_gb:
            rank_zero_warn(
                f"{self.root}: {num_images} images hold {size:.1f} GB in memory in every rank and are decoded "
                f"at every start. Prepare them once for streaming instead: diffrep prepare {self.root} "
                f"PREPARED --image_size {self.image_size} --channels {self.channels}, then "
                "--data diffrep.datamodules.StreamingImageDataModule --data.init_args.root PREPARED "
                "(docs/gpus.md#data-at-scale)"
            )

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        if self._arrays is None:
            self._arrays = self._read_all()
        images, labels = self._arrays
        kept, test = hold_out(images.shape[0], self.test_size, self.seed + 1)
        index = test if split == "test" else kept
        return images[index], labels[index]
