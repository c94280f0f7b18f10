"""A training loader that Lightning can checkpoint mid-epoch and resume exactly.

Lightning saves ``state_dict()`` of a loader that has one and hands it back through
``load_state_dict`` before the resumed epoch starts. Here that state is the epoch and the
number of samples the run has consumed (over all ranks), so a resumed run sees the rest of the
same permutation, also with a different number of devices.

- The order is ``DistributedSampler``'s: a permutation seeded by (seed, epoch), each rank taking
  every world-th item. Being a ``DistributedSampler``, Lightning leaves it in place under DDP.
- The loader has its own ``generator``, so creating an iterator draws nothing from the global
  RNG (a plain DataLoader does, which shifts every later noise draw of a resumed run).
- Lightning fetches a sized loader's batches one at a time (no prefetch), so the batches this
  loader has yielded are the batches the run has consumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from diffrep.distributed import rank_and_world


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled, seeded) that can start part-way into an epoch."""

    def __init__(self, dataset: Dataset, seed: int = 0, drop_last: bool = False) -> None:
        rank, world = rank_and_world()
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=drop_last)
        self.start = 0  # items of this rank's share to skip, once

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self.start = self.start, 0
        return iter(indices[start:])


class ResumableDataLoader(DataLoader):
    """A shuffled training loader with ``state_dict``/``load_state_dict`` for mid-epoch resume."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, drop_last: bool = True, **kwargs: Any) -> None:
        self.resumable_sampler = ResumableSampler(dataset, seed)
        super().__init__(dataset, batch_size=batch_size, sampler=self.resumable_sampler, drop_last=drop_last,
                         generator=torch.Generator().manual_seed(seed), **kwargs)
        self._yielded = 0

    def __iter__(self) -> Iterator[Any]:
        self._yielded = self.resumable_sampler.start // self.batch_size  # skipped batches count as seen
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        sampler = self.resumable_sampler
        if self._yielded >= len(self):  # a finished epoch: the next one starts from its beginning
            return {"epoch": sampler.epoch + 1, "samples": 0}
        return {"epoch": sampler.epoch, "samples": self._yielded * self.batch_size * sampler.num_replicas}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self.resumable_sampler
        sampler.set_epoch(int(state["epoch"]))
        per_rank = int(state["samples"]) // sampler.num_replicas
        sampler.start = per_rank - per_rank % self.batch_size  # whole batches, as the old run consumed them
