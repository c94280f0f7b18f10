"""Every random stream a training step draws from, saved into a checkpoint and restored from it, so
a resumed run draws the same t and noise as an unbroken one (and per-rank streams under DDP).

Plain torch/numpy, no Lightning: the backbone calls these from its checkpoint hooks. The saved form
holds tensors, numbers and strings only, so checkpoints stay ``torch.load(weights_only=True)``-able.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture() -> dict[str, Any]:
    """The torch, numpy, Python and (where present) CUDA generator states."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state_to_plain(np.random.get_state()),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore(states: dict[str, Any]) -> None:
    """Put back what ``capture`` saved (CUDA's only where this machine has CUDA)."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(_numpy_state_from_plain(states["numpy"]))
    random.setstate(states["python"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def forked(device: torch.device):
    """A ``fork_rng`` scope for work that must not move the training streams (evaluation, seeded
    validation): the CPU's, and the CUDA device's when ``device`` is one (``fork_rng(devices=[])`` would
    fork the CPU's alone and let a GPU evaluation advance that GPU's training noise)."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def reseed_for_rank(rank: int, world_size: int) -> None:
    """Under DDP, give each rank its own t and noise stream: the seed, or the resumed state, is the same
    on every rank, and identical draws would waste the larger batch. One draw from the shared stream,
    plus the rank."""
    if world_size > 1:
        shared = int(torch.randint(2**62, (1,)))
        torch.manual_seed(shared + rank)


def _numpy_state_to_plain(state: tuple) -> tuple:
    """numpy's RNG state without numpy objects."""
    kind, keys, pos, has_gauss, cached = state
    return kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)


def _numpy_state_from_plain(state: tuple) -> tuple:
    kind, keys, pos, has_gauss, cached = state
    return kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached
