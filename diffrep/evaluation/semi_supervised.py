"""Semi-supervised classification of frozen codes: k labels per class, every other training code
unlabelled, and the question a researcher asks of a representation — how much do the unlabelled
codes help?

For each k and seed the same labelled draw (``draw_labelled``) feeds three classifiers, so their
difference is the gain from the unlabelled data alone:

- ``supervised``: scikit-learn's ``LogisticRegression`` on the k labelled codes only;
- ``label_spreading``: scikit-learn's ``LabelSpreading`` (Zhou et al. 2004) over the k-NN graph of
  the standardised training codes (``kernel='knn'``: a sparse graph, so 50000 codes fit in memory;
  the test codes are labelled by their k nearest training codes, in chunks);
- ``self_training``: scikit-learn's ``SelfTrainingClassifier`` around the same logistic regression:
  fit on the labelled codes, add the unlabelled codes it predicts with probability >= ``threshold``
  as pseudo-labels, refit; ``rounds`` times.

The hyper-parameters are fixed (named below) rather than tuned, since k labels per class leave no
room for a validation split; the test codes are used for the final score only. Codes are
standardised with the statistics of all training codes (unlabelled statistics are fair game).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from diffrep.errors import ConfigError
from diffrep.evaluation.linear import Standardiser

LOGISTIC_C = 1.0  # scikit-learn's default inverse L2 strength
SPREADING_NEIGHBOURS = 10
# alpha: the weight of the neighbours against the seed labels; Zhou et al.'s 0.99, under which labels
# travel along the graph. At scikit-learn's default of 0.2 the spread stops after a few hops (its change
# falls below tol): on two half-moons with 3 labels each, 82% of the unlabelled points right vs 99%.
SPREADING_ALPHA = 0.99
SPREADING_ITERATIONS = 1000
SELF_TRAINING_THRESHOLD = 0.9
SELF_TRAINING_ROUNDS = 5


def draw_labelled(labels: Tensor, k: int, seed: int) -> Tensor:
    """Indices of k items of each class, drawn with ``seed``; a class with fewer than k items is an error."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in sorted(int(c) for c in labels.unique()):
        members = (labels == c).nonzero().flatten()
        if len(members) < k:
            raise ConfigError(f"class {c} has {len(members)} training codes, fewer than {k} labels per class")
        chosen.append(members[torch.randperm(len(members), generator=g)[:k]])
    return torch.cat(chosen)


def standardise(train_x: Tensor, *others: Tensor) -> list[np.ndarray]:
    """float64 numpy arrays standardised with the training codes' mean and std."""
    scale = Standardiser.fit(train_x.double())
    return [scale(t.double()).numpy() for t in (train_x, *others)]


def _logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=LOGISTIC_C, max_iter=1000)


def label_spreading_predict(train_x: np.ndarray, seeds: np.ndarray, test_x: np.ndarray,
                            n_neighbors: int = SPREADING_NEIGHBOURS, chunk: int = 4096) -> np.ndarray:
    """Labels of ``test_x`` after spreading ``seeds`` (class index, -1 = unlabelled) over the k-NN
    graph of ``train_x``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import LabelSpreading

    model = LabelSpreading(kernel="knn", n_neighbors=n_neighbors, alpha=SPREADING_ALPHA,
                           max_iter=SPREADING_ITERATIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the spread is used as it stands after max_iter
        model.fit(train_x, seeds)
    with np.errstate(invalid="ignore", divide="ignore"):  # a test code whose neighbours got no label
        return np.concatenate([model.predict(test_x[i : i + chunk]) for i in range(0, len(test_x), chunk)])


def self_training_predict(train_x: np.ndarray, seeds: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import SelfTrainingClassifier

    model = SelfTrainingClassifier(_logistic(), threshold=SELF_TRAINING_THRESHOLD, max_iter=SELF_TRAINING_ROUNDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # logistic rounds stopped at max_iter
        model.fit(train_x, seeds)
    return model.predict(test_x)


def semi_supervised_accuracy(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
    labels_per_class: Sequence[int] = (1, 10, 100), seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = ("supervised", "label_spreading", "self_training"),
) -> dict[str, dict[int, dict[str, float]]]:
    """{method: {k: {"mean", "std"}}} of test accuracy over ``seeds`` (module docstring)."""
    unknown = set(methods) - {"supervised", "label_spreading", "self_training"}
    if unknown:
        raise ConfigError(f"unknown semi-supervised methods {sorted(unknown)}")
    x, xt = standardise(train_x, test_x)
    y, yt = train_y.numpy(), test_y.numpy()
    scores: dict[str, dict[int, list[float]]] = {m: {k: [] for k in labels_per_class} for m in methods}
    for k in labels_per_class:
        for seed in seeds:
            idx = draw_labelled(train_y, k, seed).numpy()
            partial = np.full_like(y, -1)
            partial[idx] = y[idx]
            for method in methods:
                if method == "supervised":
                    predicted = _logistic().fit(x[idx], y[idx]).predict(xt)
                elif method == "label_spreading":
                    predicted = label_spreading_predict(x, partial, xt)
                else:
                    predicted = self_training_predict(x, partial, xt)
                scores[method][k].append(float((predicted == yt).mean()))
    return {m: {k: mean_std(v) for k, v in per_k.items()} for m, per_k in scores.items()}


def mean_std(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}
