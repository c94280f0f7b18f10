"""Attribute directions in code space and edits along them (PDAE sec. 4.3, after Diff-AE).

A linear classifier is fit on standardised codes to separate images with an attribute (or of
a class) from the rest; its unit normal w is the edit direction, and an edit of strength s is
    z' = z + s * sqrt(d) * w / ||w||   (in the standardised space, then mapped back),
so s = 1 moves a code by about one typical code length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from diffrep.evaluation.linear import Standardiser, fit_logistic_regression


@dataclass
class CodeDirection:
    standardiser: Standardiser
    unit: Tensor  # (d,), ||unit|| = 1, in standardised space

    def edit(self, z: Tensor, scale: float) -> Tensor:
        """Move codes by ``scale * sqrt(d)`` along the direction (standardised units)."""
        zn = self.standardiser(z) + scale * math.sqrt(self.unit.numel()) * self.unit.to(z)
        return zn * self.standardiser.std + self.standardiser.mean


def fit_code_direction(codes: Tensor, labels: Tensor, positive: int, l2: float = 1e-3) -> CodeDirection:
    """The direction towards class ``positive`` (labels == positive vs the rest)."""
    target = (labels == positive).long()
    if target.sum() == 0 or target.sum() == len(target):
        raise ValueError(f"class {positive} must be present and not the only class among the labels")
    standardiser = Standardiser.fit(codes)
    classifier = fit_logistic_regression(standardiser(codes), target, num_classes=2, l2=l2)
    w = classifier.weight[1] - classifier.weight[0]
    return CodeDirection(standardiser, w / w.norm())
