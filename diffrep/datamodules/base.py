"""One datamodule pattern for every data set: arrays in memory, (image in [-1, 1], label) out.

A subclass only says how to read the uint8 arrays of a split (``load_split``); splitting, resizing,
flipping and the loaders are shared. A source too large to hold as arrays (an LMDB file) builds its
splits itself (``build_splits``) from data sets that decode on demand, and reads no arrays.
Labels are kept (-1 where a data set has none) so evaluation can use them.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffrep.datamodules.resumable import ResumableDataLoader
from diffrep.datamodules.splits import hold_out
from diffrep.errors import DiffrepError


class DataError(DiffrepError, RuntimeError):
    """A data set is missing or corrupt; the message names the fix."""


def search_roots(root: str | os.PathLike | None, download: bool = False) -> list[Path]:
    """Where data is looked for: the ``root`` the user gave, and only it; with no root,
    $DIFFREP_DATA, ./data and /usr/share/datasets in that order.

    A typed root that does not exist is an error (never silently replaced by another folder),
    unless ``download`` will create it.
    """
    if root:
        path = Path(root).expanduser()
        if not path.is_dir() and not download:
            raise DataError(
                f"data root {path} does not exist. Fix: pass an existing folder with --data.init_args.root, "
                "or leave root unset to search $DIFFREP_DATA, ./data and /usr/share/datasets"
            )
        return [path]
    candidates = [os.environ.get("DIFFREP_DATA"), "data", "/usr/share/datasets"]
    return [Path(c).expanduser() for c in candidates if c]


class ImageArrayDataset(Dataset):
    """uint8 images (N, C, H, W) and labels; converts to [-1, 1] floats and optionally flips."""

    def __init__(self, images: Tensor, labels: Tensor, image_size: int, flip: bool = False) -> None:
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images, self.labels, self.image_size, self.flip = images, labels.long(), image_size, flip

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = to_model_range(self.images[index], self.image_size)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.labels[index]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def without_augmentation(self) -> ImageArrayDataset:
        """The same images (shared, not copied) with no random flip: deterministic codes for probes."""
        return ImageArrayDataset(self.images, self.labels, self.image_size, flip=False)


def to_model_range(image: Tensor, size: int) -> Tensor:
    """uint8 (C, H, W) -> float in [-1, 1] at ``size``.

    A small enlargement (at most a quarter of ``size``, e.g. MNIST 28 -> 32) pads with the
    background value as the PDAE/DDPM MNIST setups do; anything else is an antialiased resize.
    """
    x = image.float() / 127.5 - 1.0
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if 0 < size - h <= size // 4 and 0 < size - w <= size // 4 and (size - h) % 2 == 0 and (size - w) % 2 == 0:
        ph, pw = (size - h) // 2, (size - w) // 2
        return F.pad(x, (pw, pw, ph, ph), value=-1.0)
    return F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(
        -1, 1
    )


class ImageDataModule(L.LightningDataModule):
    """Base datamodule: a seeded train/val split of the training set, the official test set.

    ``class_names`` (index -> name) is set by data sets that know them, for plots and tables.
    """

    class_names: tuple[str, ...] | None = None

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 32,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_size: int | float = 0.1,
        num_workers: int = 0,
        flip: bool = False,
        subset: int | None = None,
        download: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.root, self.image_size, self.batch_size = root, image_size, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_size, self.num_workers, self.flip = val_size, num_workers, flip
        self.subset, self.download, self.seed = subset, download, seed
        self.splits: dict[str, Dataset] = {}

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """uint8 images (N, C, H, W) and int labels of 'train' or 'test': the one method an
        array-backed subclass writes (a subclass that overrides ``build_splits`` needs none)."""
        raise TypeError(f"{type(self).__name__} reads its images with neither load_split (whole splits as arrays) "
                        "nor build_splits (data sets decoded on demand); a datamodule defines one of them")

    def prepare_data(self) -> None:
        """Runs once per node: downloads when asked, so ``setup`` only reads."""
        self.load_split("train")

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.build_splits()

    def build_splits(self) -> dict[str, Dataset]:
        """'train', 'val' and 'test' data sets yielding (image in [-1, 1], label), each with
        ``without_augmentation()``, ``labels`` and ``channels``; by default from ``load_split``'s arrays:
        validation held out of the training set (seeded), the official test set."""
        images, labels = self.load_split("train")
        train_idx, val_idx = hold_out(images.shape[0], self.val_size, self.seed)
        n_val = len(val_idx)
        if self.subset is not None:
            train_idx = train_idx[: self.subset]
            val_idx = val_idx[: max(1, min(n_val, self.subset // 4))] if n_val else val_idx
        test_images, test_labels = self.load_split("test")
        size = self.image_size
        return {
            "train": ImageArrayDataset(images[train_idx], labels[train_idx], size, self.flip),
            "val": ImageArrayDataset(images[val_idx], labels[val_idx], size),
            "test": ImageArrayDataset(test_images, test_labels, size),
        }

    def evaluation_split(self, split: str) -> ImageArrayDataset:
        """A split as evaluation reads it: the training images without their random flips, so
        codes (probes, priors, statistics) are the same every time they are computed."""
        self.setup()
        return self.splits[split].without_augmentation()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, size, size) of the images this module yields."""
        self.setup()
        return (self.splits["train"].channels, self.image_size, self.image_size)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(self.splits[split]) >= self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled by (seed, epoch) and resumable mid-epoch (``diffrep.datamodules.resumable``)."""
        self.setup()
        train = self.splits["train"]
        return ResumableDataLoader(
            train,
            batch_size=self.batch_size,
            seed=self.seed,
            drop_last=len(train) >= self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
