"""Codes and labels of a data loader, through a model's public ``encode``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


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
        raise ValueError("the loader yielded no batches; check the data split")
    z, y = torch.cat(codes), torch.cat(labels)
    return (z, y) if max_items is None else (z[:max_items], y[:max_items])
