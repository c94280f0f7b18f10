"""Multinomial logistic regression on frozen features, full batch with L-BFGS, in torch.

Used by the linear probe and by PDAE's attribute directions. Full-batch L-BFGS on a convex
objective converges to the same optimum every time, so results do not depend on a learning
rate or batch order; the L2 strength is the only knob.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Standardiser:
    """Per-feature mean and std of the training features, applied to every split."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, features: Tensor) -> Standardiser:
        return cls(features.mean(0), features.std(0).clamp_min(1e-6))

    def __call__(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.std


@dataclass
class LinearClassifier:
    weight: Tensor  # (num_classes, dim)
    bias: Tensor  # (num_classes,)

    def logits(self, features: Tensor) -> Tensor:
        return features @ self.weight.T + self.bias

    def predict(self, features: Tensor) -> Tensor:
        return self.logits(features).argmax(1)


def fit_logistic_regression(
    features: Tensor, labels: Tensor, num_classes: int | None = None, l2: float = 1e-4, max_iter: int = 200
) -> LinearClassifier:
    """Minimise mean cross-entropy + l2/2 ||W||^2 (bias not penalised) over the whole set."""
    with torch.inference_mode(False):  # callable from `trainer.test`, which runs in inference mode
        return _fit(features, labels, num_classes, l2, max_iter)


def _fit(features: Tensor, labels: Tensor, num_classes: int | None, l2: float, max_iter: int) -> LinearClassifier:
    x, y = features.detach().double().clone(), labels.long().clone()
    num_classes = num_classes or int(y.max()) + 1
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LinearClassifier(weight.detach().to(features.dtype), bias.detach().to(features.dtype))
