"""A folder of images (CelebA, FFHQ, your own): centre-cropped to a square, then resized.

Images are found recursively. If every image sits in a sub-folder, the sub-folder names become
class labels (sorted); otherwise labels are -1. There is no official test split, so ``test_size``
images (seeded) are held out as one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from diffrep.datamodules.base import DataError, ImageDataModule

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class ImageFolderDataModule(ImageDataModule):
    def __init__(self, root: str | None = None, channels: int = 3, test_size: int | float = 0.1, **kwargs) -> None:
        super().__init__(root=root, **kwargs)
        if root is None:
            raise DataError("ImageFolderDataModule needs --data.init_args.root pointing at your image folder")
        self.channels, self.test_size = channels, test_size
        self._arrays: tuple[Tensor, Tensor] | None = None

    def _read_all(self) -> tuple[Tensor, Tensor]:
        root = Path(self.root)
        if not root.is_dir():
            raise DataError(f"image folder {root} does not exist")
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in _EXTENSIONS)
        if not paths:
            raise DataError(f"no images ({', '.join(sorted(_EXTENSIONS))}) under {root}")
        classes = sorted({p.parent.name for p in paths})
        labelled = all(p.parent != root for p in paths)
        self.class_names = tuple(classes) if labelled else None
        images, labels, broken = [], [], []
        for path in paths:
            try:
                images.append(self._load(path))
            except (OSError, UnidentifiedImageError):
                broken.append(str(path))
                continue
            labels.append(classes.index(path.parent.name) if labelled else -1)
        if broken:
            listed = "\n  ".join(broken[:20])
            raise DataError(f"{len(broken)} unreadable image(s); remove or replace them:\n  {listed}")
        return torch.from_numpy(np.stack(images)), torch.tensor(labels)

    def _load(self, path: Path) -> np.ndarray:
        with Image.open(path) as img:
            img = img.convert("L" if self.channels == 1 else "RGB")
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((self.image_size,) * 2, Image.BICUBIC)
            array = np.asarray(img, dtype=np.uint8)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        if self._arrays is None:
            self._arrays = self._read_all()
        images, labels = self._arrays
        n = images.shape[0]
        n_test = int(self.test_size * n) if isinstance(self.test_size, float) else int(self.test_size)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + 1))
        index = order[:n_test] if split == "test" else order[n_test:]
        return images[index], labels[index]
