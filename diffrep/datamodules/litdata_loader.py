"""LitData's loader with a resume that lasts one epoch, and its training stream with flips that a
resumed run replays (imported only where streaming is used: importing litdata takes over a second)."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from litdata import StreamingDataLoader, StreamingDataset

from diffrep.datamodules.base import to_model_range


class OneEpochResumeLoader(StreamingDataLoader):
    """A ``StreamingDataLoader`` whose loaded state is replayed for one epoch only.

    LitData keeps replaying a loaded state until an epoch runs to ``StopIteration``; Lightning ends
    an epoch after ``len(loader)`` batches without asking for one more, so the epoch after a resumed
    one would repeat the resumed epoch's tail. Here every ``iter()`` after the first one that
    follows ``load_state_dict`` starts a fresh epoch, as in an unbroken run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replay_pending = False

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        super().load_state_dict(obj)
        self._replay_pending = self.restore

    def __iter__(self) -> Any:
        if not self._replay_pending:
            self.restore = False
        self._replay_pending = False
        return super().__iter__()


class ImageStream(StreamingDataset):
    """Prepared items as (image in [-1, 1], label), flipped or not by a hash of (seed, epoch, item).

    A random draw in the loader's workers would depend on how many items a worker had drawn for
    before, which a resumed run does not replay; a hash of the item's own index gives the resumed
    run the same flips as the unbroken one, with any number of workers."""

    def __init__(self, input_dir: str, image_size: int, flip: bool, seed: int, **kwargs: Any) -> None:
        super().__init__(input_dir, seed=seed, **kwargs)
        self.image_size, self.flip, self.flip_seed = image_size, flip, seed

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        x = to_model_range(torch.as_tensor(item["image"]), self.image_size)
        if self.flip and flips(self.flip_seed, self.current_epoch, int(getattr(index, "index", index))):
            x = x.flip(-1)
        return x, torch.as_tensor(item["label"], dtype=torch.long)


def flips(seed: int, epoch: int, index: int) -> bool:
    """A fair coin per (seed, epoch, item), the same in every process."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=1).digest()
    return digest[0] < 128
