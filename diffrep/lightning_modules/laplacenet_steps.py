"""LaplaceNet's per-step math as the official ``LaplaceNet/main.py`` and ``helpers.py`` compute it, plain
torch: the cosine lr ramp-down, the mixup draw of a step, and the loss over a composite batch's views.

The loss is the mean over the ``aug_num`` views of the mixed-up cross-entropy in float64, as the official
code computes it. The mixup draw of a step comes from a generator seeded by (seed, stream, step), so a
resumed run draws the same.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from diffrep.datamodules.laplacenet import item_seed
from diffrep.errors import ConfigError


def cosine_rampdown(epoch: float, length: float) -> float:
    """0.5 (cos(pi epoch / length) + 1) (Loshchilov & Hutter 2017, one cycle), as LaplaceNet's helpers."""
    if not 0 <= epoch <= length:
        raise ConfigError(f"the lr ramp-down is {length} epochs long; epoch {epoch} is outside it")
    return 0.5 * (math.cos(math.pi * epoch / length) + 1)


def set_rampdown_lr(optimizer: torch.optim.Optimizer, base_lr: float, epoch: float, length: float) -> float:
    """Every group's lr at fractional ``epoch`` of the ramp-down; returns it."""
    lr = base_lr * cosine_rampdown(epoch, length)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def mixup_draw(seed: int, stream: int, step: int, n: int, alpha: float, mixup: bool,
               device: torch.device | str = "cpu") -> tuple[float, Tensor]:
    """(lambda ~ Beta(alpha, alpha), a permutation of the batch; the identity without mixup) of a step."""
    rng = np.random.default_rng(item_seed(seed, stream, step))
    lam = float(rng.beta(alpha, alpha))
    return lam, torch.as_tensor(rng.permutation(n) if mixup else np.arange(n), device=device)


def mixup_loss(logits: Tensor, targets: Tensor, permutation: Tensor, lam: float,
               weights: Tensor | None = None) -> Tensor:
    """lam CE(y) + (1 - lam) CE(y[perm]) per item in float64, optionally weighted, averaged."""
    logits = logits.double()
    loss_a = F.cross_entropy(logits, targets, reduction="none")
    loss_b = F.cross_entropy(logits, targets[permutation], reduction="none")
    if weights is not None:
        loss_a, loss_b = loss_a * weights.double(), loss_b * weights[permutation].double()
    return (lam * loss_a + (1 - lam) * loss_b).mean()


def composite_loss(classifier: torch.nn.Module, batch: Any, lam: float, permutation: Tensor,
                   weighted: bool) -> Tensor:
    """The mean over a composite batch's views of the mixed-up cross-entropy (weights: the pseudo-labels')."""
    views, targets, weights = batch  # (B, A, C, H, W), (B,), (B,)
    loss = 0.0
    for view in views.unbind(1):
        mixed = lam * view + (1 - lam) * view[permutation]
        loss = loss + mixup_loss(classifier(mixed)[0], targets, permutation, lam, weights if weighted else None)
    return loss / views.shape[1]


class FitClock:
    """Wall minutes spent fitting, summed over every resumed process (the accuracy-against-minutes curve)."""

    def __init__(self) -> None:
        self.minutes_before = 0.0
        self.started = time.perf_counter()

    def start(self) -> None:
        self.started = time.perf_counter()

    def minutes(self) -> float:
        return self.minutes_before + (time.perf_counter() - self.started) / 60

    def resume_from(self, minutes: float) -> None:
        """A checkpoint's minutes, counted before this process's."""
        self.minutes_before = float(minutes)
