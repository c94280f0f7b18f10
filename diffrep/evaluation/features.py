"""Codes and labels of a data loader, through a model's public ``encode``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from diffrep.errors import ConfigError
from diffrep.evaluation.distributed import map_items


def collect_codes(model, loader: Iterable, max_items: int | None = None) -> tuple[Tensor, Tensor]:
    """(codes, labels) on the CPU for up to ``max_items`` items of ``loader``."""
    codes, labels, seen = [], [], 0
    device = model.model_device()
    for images, targets in loader:
        if max_items is not None and seen >= max_items:
            break
        codes.append(model.encode(images.to(device)).float().cpu())
        labels.append(targets.cpu())
        seen += len(images)
    if not codes:
        raise ConfigError("the loader yielded no batches; check the data split")
    z, y = torch.cat(codes), torch.cat(labels)
    return (z, y) if max_items is None else (z[:max_items], y[:max_items])


def encode_split(model, dataset, max_items: int | None = None, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """(codes, labels) of the first ``max_items`` items of a dataset, the work split over DDP
    ranks and gathered, so every rank holds the same codes in data set order."""

    def codes(images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        return {"codes": model.encode(images).float(), "labels": labels}

    out = map_items(codes, dataset, max_items, batch_size, model.model_device())
    return out["codes"], out["labels"]
