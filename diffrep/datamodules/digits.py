"""scikit-learn's 8x8 handwritten digits: a real data set that ships offline, for tests and smoke runs."""

from __future__ import annotations

import torch
from torch import Tensor

from diffrep.datamodules.base import ImageDataModule


class DigitsDataModule(ImageDataModule):
    """1797 digits, pixel values 0..16 scaled to 0..255; the last ``test_size`` form the test split."""

    class_names = tuple(str(d) for d in range(10))

    def __init__(self, image_size: int = 8, test_size: int = 297, **kwargs) -> None:
        super().__init__(image_size=image_size, **kwargs)
        self.test_size = test_size

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy((digits.images * (255.0 / 16.0)).round()).to(torch.uint8)[:, None]
        labels = torch.from_numpy(digits.target)
        cut = images.shape[0] - self.test_size
        return (images[cut:], labels[cut:]) if split == "test" else (images[:cut], labels[:cut])
