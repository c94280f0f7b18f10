"""Where this process stands in a distributed run: plain ``torch.distributed``, no Lightning.

The one helper every layer needs (the resumable training loader, the evaluation gathers, the
code writer), kept at the bottom of the package so imports point downward only.
"""

from __future__ import annotations

import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
