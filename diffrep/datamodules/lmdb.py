"""The LMDB files of the official PDAE and Diff-AE code, read as they are.

Their layout (ckczzj/PDAE ``dataset/*.py``, phizaz/diffae ``dataset.py`` and its
``data_resize_*.py`` writers): one key per image, ``f"{resolution}-{index:0{width}d}"`` (for
example ``256-00042`` for FFHQ, ``None-0000042`` for PDAE's CelebA-64), holding the encoded file
(PNG, JPEG or WebP), and a ``length`` key with the count. The prefix and the width differ between
data sets, so they are read from the file, not assumed. Images are decoded on demand: nothing
is held in memory, and a training run reads only the batches it uses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from diffrep.datamodules.base import DataError, ImageDataModule, to_model_range
from diffrep.datamodules.images import Crop, load_square
from diffrep.datamodules.splits import train_val_test

_KEY = re.compile(rb"^([^-]+)-(\d+)$")


def is_lmdb(path: str | Path) -> bool:
    """An LMDB environment: a folder holding ``data.mdb``."""
    return (Path(path) / "data.mdb").is_file()


_ENVIRONMENTS: dict[Path, Any] = {}


def open_environment(path: Path) -> Any:
    """One read-only handle per file and process, opened on first use: LMDB refuses a second open
    of a file in one process, and a handle must not cross a fork (DataLoader or LitData workers),
    so every handle is closed before a fork and reopened where it is next read."""
    key = path.resolve()
    if key not in _ENVIRONMENTS:
        import lmdb

        try:
            _ENVIRONMENTS[key] = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False,
                                           max_readers=64)
        except lmdb.Error as err:
            raise DataError(f"{path} cannot be opened as an LMDB file ({err}); prepare it again") from err
    return _ENVIRONMENTS[key]


def close_environments() -> None:
    while _ENVIRONMENTS:
        _ENVIRONMENTS.popitem()[1].close()


os.register_at_fork(before=close_environments)


class OfficialLMDB:
    """Encoded images by index from an official-layout LMDB file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not is_lmdb(self.path):
            raise DataError(f"{self.path} is not an LMDB folder (no data.mdb in it). Fix: point root at the folder "
                            "the official code's data_resize_*.py wrote (e.g. datasets/ffhq256.lmdb)")
        with self._open().begin() as txn:
            stored = txn.get(b"length")
            self.prefix, self.width, counted = self._layout(txn, count=stored is None)
        self.length = int(stored.decode()) if stored is not None else counted

    def _open(self) -> Any:
        return open_environment(self.path)

    def _layout(self, txn: Any, count: bool) -> tuple[bytes, int, int]:
        """The key prefix and index width from the first image key; the number of image keys
        only when ``count`` (the official files store it as ``length``, so no full scan)."""
        prefix, width, counted = None, 0, 0
        for key in txn.cursor().iternext(keys=True, values=False):
            match = _KEY.match(bytes(key))
            if match is None:
                continue
            prefix, width = prefix or match.group(1), width or len(match.group(2))
            counted += 1
            if not count:
                break
        if prefix is None:
            raise DataError(f"{self.path} has no image keys of the official layout ('<resolution>-<index>', "
                            "e.g. '256-00000'); it was not written by PDAE's or Diff-AE's data preparation")
        return prefix, width, counted

    def __len__(self) -> int:
        return self.length

    def key(self, index: int) -> bytes:
        return self.prefix + b"-" + str(index).zfill(self.width).encode()

    def __getitem__(self, index: int) -> bytes:
        with self._open().begin() as txn:
            value = txn.get(self.key(index))
        if value is None:
            raise DataError(f"{self.path} has no key {self.key(index).decode()} (length {self.length})")
        return bytes(value)


class LazyImageDataset(Dataset):
    """Images decoded on demand from an :class:`OfficialLMDB` (or any index -> encoded bytes source),
    yielding (image in [-1, 1], label) like :class:`~diffrep.datamodules.base.ImageArrayDataset`."""

    def __init__(self, source: OfficialLMDB, indices: Tensor, image_size: int, channels: int, crop: Crop,
                 flip: bool = False) -> None:
        self.source, self.indices = source, indices.long()
        self.image_size, self.channels, self.crop, self.flip = image_size, channels, crop, flip
        self.labels = torch.full((len(indices),), -1, dtype=torch.long)  # the official files hold no labels

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> np.ndarray:
        index = int(self.indices[i])
        try:
            return load_square(self.source[index], self.image_size, self.channels, self.crop)
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"{self.source.path}: image {index} cannot be decoded ({err})") from err

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = to_model_range(torch.from_numpy(self.read(i)), self.image_size)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.labels[i]

    def without_augmentation(self) -> LazyImageDataset:
        return LazyImageDataset(self.source, self.indices, self.image_size, self.channels, self.crop)


class LMDBImageDataModule(ImageDataModule):
    """An official PDAE / Diff-AE LMDB file as a datamodule: ``--data.init_args.root datasets/ffhq256.lmdb``.

    The files have no split, so validation and test images are held out seeded, exactly as
    :class:`~diffrep.datamodules.ImageFolderDataModule` holds them out of a folder. ``crop:
    celeba`` is the official CelebA face crop (for the aligned 178x218 images PDAE's CelebA-64
    file stores); the FFHQ / CelebA-HQ files are square already.
    """

    def __init__(self, root: str | None = None, channels: int = 3, test_size: int | float = 0.1,
                 crop: Crop = "centre", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
        if root is None:
            raise DataError("LMDBImageDataModule needs --data.init_args.root pointing at the .lmdb folder")
        self.channels, self.test_size, self.crop = channels, test_size, crop

    def prepare_data(self) -> None:
        """Nothing to download; ``setup`` reads the file's layout once (and reports a bad one)."""

    def build_splits(self) -> dict[str, LazyImageDataset]:
        """The seeded held-out splits as index lists into the file; images are decoded when read."""
        source = OfficialLMDB(self.root)
        indices = train_val_test(len(source), self.val_size, self.test_size, self.seed)
        if self.subset is not None:
            indices["train"] = indices["train"][: self.subset]
            indices["val"] = indices["val"][: max(1, min(len(indices["val"]), self.subset // 4))]
        return {
            name: LazyImageDataset(source, index, self.image_size, self.channels, self.crop,
                                   flip=self.flip and name == "train")
            for name, index in indices.items()
        }
