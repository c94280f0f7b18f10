"""Attribute directions in code space and edits along them (PDAE sec. 4.3, after Diff-AE).

A linear classifier is fit on standardised codes to separate images with an attribute (or of
a class) from the rest; its unit normal w is the edit direction, and an edit of strength s is
    z' = z + s * sqrt(d) * w / ||w||   (in the standardised space, then mapped back),
so s = 1 moves a code by about one typical code length.

Two classifiers:
- ``logistic`` (diffrep's default): one class against the rest, L2-regularised logistic
  regression by full-batch L-BFGS (deterministic, no learning rate); w = w_pos - w_rest.
- ``bce``: the official PDAE/Diff-AE one (ckczzj/PDAE ``trainer/train_manipulation.py``): one
  linear layer with an output per attribute, trained jointly by Adam on the binary
  cross-entropy of every attribute (multi-hot targets; for a labelled data set, each class is
  an attribute); w is the row of the attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from diffrep.errors import ConfigError
from diffrep.evaluation.linear import Standardiser, fit_logistic_regression

CLASSIFIERS = ("logistic", "bce")


@dataclass
class CodeDirection:
    standardiser: Standardiser
    unit: Tensor  # (d,), ||unit|| = 1, in standardised space

    def edit(self, z: Tensor, scale: float) -> Tensor:
        """Move codes by ``scale * sqrt(d)`` along the direction (standardised units)."""
        zn = self.standardiser(z) + scale * math.sqrt(self.unit.numel()) * self.unit.to(z)
        return zn * self.standardiser.std.to(z) + self.standardiser.mean.to(z)


def fit_code_direction(codes: Tensor, labels: Tensor, positive: int, l2: float = 1e-3,
                       classifier: str = "logistic") -> CodeDirection:
    """The direction towards class ``positive`` (``classifier``: see the module docstring)."""
    target = (labels == positive).long()
    if target.sum() == 0 or target.sum() == len(target):
        raise ConfigError(f"class {positive} must be present and not the only class among the labels")
    if classifier == "bce":
        attributes = torch.nn.functional.one_hot(labels.long(), int(labels.max()) + 1).float()
        return fit_attribute_directions(codes, attributes)[positive]
    if classifier != "logistic":
        raise ConfigError(f"unknown direction classifier {classifier!r}; choose one of {list(CLASSIFIERS)}")
    standardiser = Standardiser.fit(codes)
    fitted = fit_logistic_regression(standardiser(codes), target, num_classes=2, l2=l2)
    w = fitted.weight[1] - fitted.weight[0]
    return CodeDirection(standardiser, w / w.norm())


def fit_attribute_directions(codes: Tensor, attributes: Tensor, lr: float = 1e-3, epochs: int = 20,
                             batch_size: int = 128, seed: int = 0) -> list[CodeDirection]:
    """One direction per attribute from a jointly trained multi-label linear classifier.

    ``attributes`` is (N, A) in {0, 1}. The classifier is Linear(d, A) on standardised codes with
    a binary cross-entropy per attribute, trained by Adam (the official code: lr 1e-4 for 10^5
    steps at batch 128; ``lr``/``epochs`` are scaled down for CPU-sized code sets).
    """
    if attributes.ndim != 2 or attributes.shape[0] != codes.shape[0]:
        raise ConfigError(f"attributes must be (N, A) for N = {codes.shape[0]} codes, got {tuple(attributes.shape)}")
    standardiser = Standardiser.fit(codes)
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode(False), torch.enable_grad():  # callable from `trainer.test`
        x, y = standardiser(codes).detach().float().clone(), attributes.detach().float().clone()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            layer = torch.nn.Linear(x.shape[1], y.shape[1])
        optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=generator).split(batch_size):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(layer(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    weight = layer.weight.detach()
    return [CodeDirection(standardiser, w / w.norm()) for w in weight]
