"""Seeded hold-outs, shared by every data source so one folder split in memory, streamed after
``diffrep prepare`` or read from an LMDB file gives the same train/val/test images."""

from __future__ import annotations

import torch
from torch import Tensor

from diffrep.errors import ConfigError


def held_out_count(size: int | float, n: int) -> int:
    """``size`` as a number of items: a float is a fraction of ``n``, an int a count."""
    return int(size * n) if isinstance(size, float) else int(size)


def hold_out(n: int, size: int | float, seed: int) -> tuple[Tensor, Tensor]:
    """(kept, held-out) indices of ``range(n)``: the first ``size`` items of a permutation seeded by ``seed``."""
    k = held_out_count(size, n)
    if not 0 <= k < n:
        raise ConfigError(f"holding out {size} of {n} items leaves none to train on")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[k:], order[:k]


def train_val_test(n: int, val_size: int | float, test_size: int | float, seed: int) -> dict[str, Tensor]:
    """Indices of the three splits of a source with no official test split (a folder, an LMDB file):
    the test set held out with ``seed + 1``, then the validation set from the rest with ``seed``."""
    rest, test = hold_out(n, test_size, seed + 1)
    train, val = hold_out(len(rest), val_size, seed)
    return {"train": rest[train], "val": rest[val], "test": test}


def draw_labelled(labels: Tensor, k: int, seed: int) -> Tensor:
    """Indices of k items of each class, drawn with ``seed``; a class with fewer than k items is an error."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in sorted(int(c) for c in labels.unique()):
        members = (labels == c).nonzero().flatten()
        if len(members) < k:
            raise ConfigError(f"class {c} has {len(members)} training codes, fewer than {k} labels per class")
        chosen.append(members[torch.randperm(len(members), generator=g)[:k]])
    return torch.cat(chosen)
