"""Split evaluation work over DDP ranks and gather the results in the original order.

Plain ``torch.distributed`` (no Lightning), so the evaluation functions run the same in a
script, a test or a callback. With one process every function is the identity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from diffrep.distributed import rank_and_world
from diffrep.errors import ConfigError

__all__ = ["gather_in_order", "generate_items", "map_items", "rank_and_world", "shard"]


def shard(n: int) -> range:
    """The items of ``range(n)`` this rank handles: every world-th one, starting at its rank."""
    rank, world = rank_and_world()
    return range(rank, n, world)


def gather_in_order(local: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """Undo ``shard``: every rank gets all n items of each (CPU) tensor, in item order."""
    rank, world = rank_and_world()
    if world == 1:
        return {k: v[:n] for k, v in local.items()}
    parts: list[dict[str, Tensor] | None] = [None] * world
    dist.all_gather_object(parts, {k: v.cpu() for k, v in local.items()})
    out = {}
    for key in local:
        first = parts[0][key]  # type: ignore[index]
        full = first.new_empty((n, *first.shape[1:]))
        for r, part in enumerate(parts):
            full[r::world] = part[key]  # type: ignore[index]
        out[key] = full
    return out


def map_items(
    fn: Callable[[Tensor, Tensor], dict[str, Tensor]],
    dataset,
    max_items: int | None,
    batch_size: int,
    device: torch.device,
) -> dict[str, Tensor]:
    """Apply ``fn(images, labels) -> {name: per-item tensor}`` to the first ``max_items`` items
    of a (image, label) dataset, shared over the ranks, and gather the results in order."""
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    if n == 0:
        raise ConfigError("the data split is empty; check the data set and its subset/val_size settings")
    mine = list(shard(n))
    results: dict[str, list[Tensor]] = {}
    for start in range(0, len(mine), batch_size):
        items = [dataset[i] for i in mine[start : start + batch_size]]
        images = torch.stack([torch.as_tensor(x) for x, _ in items]).to(device)
        labels = torch.stack([torch.as_tensor(y) for _, y in items])
        for key, value in fn(images, labels).items():
            results.setdefault(key, []).append(value.detach().cpu())
    local = {k: torch.cat(v) for k, v in results.items()}
    if not local:  # a rank with no items still joins the gather, with empty tensors of the right kind
        image, label = dataset[0]
        probe = fn(torch.as_tensor(image)[None].to(device), torch.as_tensor(label)[None])
        local = {k: v[:0].detach().cpu() for k, v in probe.items()}
    return gather_in_order(local, n)


def generate_items(
    fn: Callable[[int, torch.Generator], Tensor], n: int, batch_size: int, device: torch.device, seed: int = 0
) -> Tensor:
    """``n`` generated items, ``fn(count, generator)`` called in batches on every rank with its
    own seeded generator (so ranks draw different items), gathered on every rank."""
    rank, _ = rank_and_world()
    mine = len(shard(n))
    generator = torch.Generator(device).manual_seed(seed * 1000 + rank)
    parts = [fn(min(batch_size, mine - start), generator).detach().cpu() for start in range(0, mine, batch_size)]
    local = torch.cat(parts) if parts else fn(1, generator).detach().cpu()[:0]
    return gather_in_order({"items": local}, n)["items"]
