"""CIFAR-10 (Krizhevsky 2009) from its python batches (``cifar-10-batches-py``)."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from diffrep.datamodules.base import DataError, ImageDataModule, search_roots
from diffrep.datamodules.download import download

_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class CIFAR10DataModule(ImageDataModule):
    """32x32 colour images in 10 classes."""

    class_names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

    def folder(self) -> Path:
        for base in search_roots(self.root, self.download):
            if (base / "cifar-10-batches-py").is_dir():
                return base / "cifar-10-batches-py"
        if self.download:
            base = Path(self.root or "data")
            archive = download(_URL, base / "cifar-10-python.tar.gz")
            with tarfile.open(archive) as tar:
                tar.extractall(base, filter="data")
            return base / "cifar-10-batches-py"
        raise DataError(
            "cifar-10-batches-py not found in " + ", ".join(map(str, search_roots(self.root, self.download)))
            + ". Fix: pass --data.init_args.root DIR holding it, or --data.init_args.download true when online."
        )

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        folder = self.folder()
        images, labels = [], []
        for name in _BATCHES[split]:
            path = folder / name
            try:
                with open(path, "rb") as handle:
                    batch = pickle.load(handle, encoding="bytes")
                data, batch_labels = batch[b"data"], batch[b"labels"]
            except (OSError, pickle.UnpicklingError, EOFError, KeyError) as err:
                raise DataError(f"{path} is missing or corrupt ({err!r}); re-download CIFAR-10") from err
            data = np.asarray(data, dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch_labels) != data.shape[0]:
                raise DataError(f"{path} has data of shape {data.shape}; expected (N, 3072) with N labels")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.extend(batch_labels)
        return torch.from_numpy(np.concatenate(images)), torch.tensor(labels)
