"""Data that does not fit in memory: LitData chunks (``diffrep prepare``) streamed to every rank.

Training reads a ``litdata.StreamingDataset``: each rank and node gets its own shard of the
chunks (LitData reads the world from torch.distributed), only the chunks in use are held in
memory, and ``StreamingDataLoader``'s ``state_dict`` (which Lightning checkpoints) resumes a run
mid-epoch on the batch it stopped before; random flips are a hash of (seed, epoch, item), so a
resumed run flips as the unbroken one did, with any number of loader workers. Evaluation reads
the same chunks by index (probes, reconstructions, code statistics need random access), so the
rest of diffrep sees the splits as it sees in-memory ones: (image in [-1, 1], label), a
``labels`` tensor, ``without_augmentation``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffrep.datamodules.base import DataError, to_model_range
from diffrep.datamodules.prepare import META, SPLITS


class ToModelRange:
    """LitData ``transform``: a prepared item -> (image in [-1, 1], label), optionally flipped."""

    def __init__(self, image_size: int, flip: bool = False) -> None:
        self.image_size, self.flip = image_size, flip

    def __call__(self, item: dict[str, Any]) -> tuple[Tensor, Tensor]:
        x = to_model_range(torch.as_tensor(item["image"]), self.image_size)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, torch.as_tensor(item["label"], dtype=torch.long)


class StreamedSplit(Dataset):
    """A prepared split read by index (LitData's random access), for evaluation."""

    def __init__(self, folder: Path, labels: Tensor, image_size: int, channels: int, flip: bool = False) -> None:
        self.folder, self.labels, self.image_size, self.channels, self.flip = folder, labels, image_size, channels, flip
        self._data: Any = None

    def _dataset(self) -> Any:
        if self._data is None:
            from litdata import StreamingDataset

            self._data = StreamingDataset(str(self.folder), shuffle=False, drop_last=False,
                                          transform=ToModelRange(self.image_size, self.flip))
        return self._data

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self._dataset()[index]

    def without_augmentation(self) -> StreamedSplit:
        return StreamedSplit(self.folder, self.labels, self.image_size, self.channels)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}


class StreamingImageDataModule(L.LightningDataModule):
    """A data set prepared by ``diffrep prepare``, streamed: ``--data.init_args.root PREPARED``.

    ``image_size`` defaults to the prepared size; another size resizes on the fly. ``seed`` sets
    LitData's shuffle (per epoch, over chunks and within them).
    """

    def __init__(self, root: str, image_size: int | None = None, batch_size: int = 64,
                 eval_batch_size: int | None = None, num_workers: int = 0, flip: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.root = Path(root).expanduser()
        meta_path = self.root / META
        if not meta_path.is_file():
            raise DataError(f"{self.root} holds no prepared data set ({META} missing). Fix: diffrep prepare "
                            f"YOUR_IMAGES {self.root} --image_size N")
        self.meta = json.loads(meta_path.read_text())
        self.image_size = image_size or int(self.meta["image_size"])
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.flip, self.seed = num_workers, flip, seed
        names = self.meta.get("class_names")
        self.class_names = tuple(names) if names else None
        self.splits: dict[str, StreamedSplit] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        channels = int(self.meta["channels"])
        for split in SPLITS:
            labels = torch.from_numpy(np.load(self.root / f"labels-{split}.npy"))
            if len(labels) and not (self.root / split / "index.json").is_file():
                raise DataError(f"{self.root / split} has no index.json; prepare {self.root} again")
            self.splits[split] = StreamedSplit(self.root / split, labels, self.image_size, channels,
                                               flip=self.flip and split == "train")

    def evaluation_split(self, split: str) -> StreamedSplit:
        self.setup()
        return self.splits[split].without_augmentation()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (int(self.meta["channels"]), self.image_size, self.image_size)

    def train_dataloader(self) -> DataLoader:
        """Shuffled, sharded over ranks and nodes, resumable mid-epoch through LitData's own state.

        The loader has its own ``generator`` so starting an epoch draws nothing from the global
        RNG (which would shift a resumed run's noise)."""
        from diffrep.datamodules.litdata_loader import ImageStream, OneEpochResumeLoader

        data = ImageStream(str(self.root / "train"), self.image_size, self.flip, self.seed, shuffle=True,
                           drop_last=True)
        return OneEpochResumeLoader(data, batch_size=self.batch_size, num_workers=self.num_workers, drop_last=True,
                                   pin_memory=torch.cuda.is_available(),
                                   generator=torch.Generator().manual_seed(self.seed))

    def _loader(self, split: str) -> DataLoader:
        self.setup()
        return DataLoader(self.splits[split], batch_size=self.eval_batch_size, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available())

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
