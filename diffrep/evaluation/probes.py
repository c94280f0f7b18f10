"""Probes of frozen codes: linear (logistic regression), k-NN, and few-label classification.

Protocols (the same for every method, so numbers compare):
- linear probe: standardise with the training codes' statistics; fit multinomial logistic
  regression by full-batch L-BFGS for each L2 strength in ``l2_grid`` on the training codes
  minus a held-out validation part; keep the strength with the best validation accuracy, refit
  on all training codes, report top-1 accuracy on the test codes.
- k-NN: cosine similarity on standardised codes, k = 20, majority vote weighted by similarity.
- few-label: for k labels per class, draw k training codes of each class (seeded), fit the linear
  probe on them alone (fixed L2, since there is no room for a validation split), report test
  accuracy; repeat over ``seeds`` and give mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from diffrep.evaluation.linear import Standardiser, fit_logistic_regression
from diffrep.evaluation.semi_supervised import draw_labelled


def accuracy(predicted: Tensor, labels: Tensor) -> float:
    return (predicted == labels).float().mean().item()


def linear_probe(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
    l2_grid: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1), val_fraction: float = 0.1, seed: int = 0,
) -> dict[str, Any]:
    """Test accuracy (overall and ``per_class``) of the best-L2 logistic regression (module docstring)."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    scale = Standardiser.fit(train_x)
    x, xt = scale(train_x), scale(test_x)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(val_fraction * len(x)))
    val, fit = order[:n_val], order[n_val:]
    scores = {}
    for l2 in l2_grid:
        clf = fit_logistic_regression(x[fit], train_y[fit], num_classes, l2=l2)
        scores[l2] = accuracy(clf.predict(x[val]), train_y[val])
    best = max(scores, key=lambda k: (scores[k], k))
    clf = fit_logistic_regression(x, train_y, num_classes, l2=best)
    predicted = clf.predict(xt)
    per_class = {int(c): accuracy(predicted[test_y == c], test_y[test_y == c]) for c in test_y.unique()}
    return {"accuracy": accuracy(predicted, test_y), "l2": best, "val_accuracy": scores[best], "per_class": per_class}


def knn_accuracy(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, k: int = 20, chunk: int = 1024
) -> float:
    """Similarity-weighted k-NN vote with cosine similarity on standardised codes."""
    scale = Standardiser.fit(train_x)
    bank = torch.nn.functional.normalize(scale(train_x).float(), dim=1)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    predictions = []
    for start in range(0, len(test_x), chunk):
        query = torch.nn.functional.normalize(scale(test_x[start : start + chunk]).float(), dim=1)
        sims, idx = (query @ bank.T).topk(min(k, len(bank)), dim=1)
        votes = torch.zeros(len(query), num_classes).scatter_add_(1, train_y[idx], sims.clamp_min(0) + 1e-6)
        predictions.append(votes.argmax(1))
    return accuracy(torch.cat(predictions), test_y)


def few_label_accuracy(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    labels_per_class: Sequence[int] = (1, 10, 100),
    seeds: Sequence[int] = (0, 1, 2),
    l2: float = 1e-2,
) -> dict[int, dict[str, float]]:
    """Mean and std of test accuracy with k labelled training codes per class (module docstring)."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    results = {}
    for k in labels_per_class:
        scores = []
        for seed in seeds:
            idx = draw_labelled(train_y, k, seed)
            scale = Standardiser.fit(train_x)  # unlabelled statistics of all training codes
            clf = fit_logistic_regression(scale(train_x[idx]), train_y[idx], num_classes, l2=l2)
            scores.append(accuracy(clf.predict(scale(test_x)), test_y))
        t = torch.tensor(scores)
        results[k] = {"mean": t.mean().item(), "std": t.std().item() if len(scores) > 1 else 0.0}
    return results
