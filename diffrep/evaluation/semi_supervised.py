"""Semi-supervised classification of frozen codes: k labels per class, every other training code
unlabelled, and the question a researcher asks of a representation — how much do the unlabelled
codes help?

For each k and seed the same labelled draw (``draw_labelled``) feeds every classifier, so their
difference is the gain from the unlabelled data alone:

- ``supervised``: scikit-learn's ``LogisticRegression`` on the k labelled codes only;
- ``label_spreading``: scikit-learn's ``LabelSpreading`` (Zhou et al. 2004) over the k-NN graph of
  the standardised training codes (``kernel='knn'``: a sparse graph, so 50000 codes fit in memory;
  the test codes are labelled by their k nearest training codes, in chunks);
- ``self_training``: scikit-learn's ``SelfTrainingClassifier`` around the same logistic regression:
  fit on the labelled codes, add the unlabelled codes it predicts with probability >= ``threshold``
  as pseudo-labels, refit; ``rounds`` times;
- ``poisson`` and ``laplace``: Poisson learning (Calder et al., ICML 2020), the graph-learning
  method for very few labels, and Laplace learning (Zhu et al. 2003), both from its authors'
  ``graphlearning`` package with its defaults, transductive as the paper runs them: one k-NN graph
  (k = 10, the package's Gaussian weights, symmetrised) over the training and the test codes, the
  labelled draw as its only labels, the test nodes' labels read off the solution. The neighbours
  are exact (scikit-learn) where the package would search approximately with Annoy, one more
  compiled dependency; exact search is what Annoy approximates.

The hyper-parameters are fixed (named below) rather than tuned, since k labels per class leave no
room for a validation split; the test codes are used for the final score only. Codes are
standardised with the statistics of all training codes (unlabelled statistics are fair game).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from torch import Tensor

from diffrep.datamodules.splits import draw_labelled
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
GRAPH_NEIGHBOURS = 10  # graphlearning's examples and Calder et al.'s experiments
METHODS = ("supervised", "label_spreading", "self_training", "poisson", "laplace")
GRAPH_METHODS = ("poisson", "laplace")


def standardise(train_x: Tensor, *others: Tensor) -> list[np.ndarray]:
    """float64 numpy arrays standardised with the training codes' mean and std."""
    scale = Standardiser.fit(train_x.double())
    return [scale(t.double()).numpy() for t in (train_x, *others)]


def _logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=LOGISTIC_C, max_iter=1000)


def supervised_predict(train_x: np.ndarray, seeds: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """The baseline every other method is compared with: logistic regression on the labelled codes
    (``seeds >= 0``) alone, handed the same partial labels as the others."""
    labelled = seeds >= 0
    return _logistic().fit(train_x[labelled], seeds[labelled]).predict(test_x)


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


def graphlearning_module():
    """The ``graphlearning`` package, or a ConfigError that names it and how to install it."""
    try:
        import graphlearning
    except ImportError as err:
        raise ConfigError(
            "the 'poisson' and 'laplace' probes need the graphlearning package (Calder et al.'s graph-based "
            f"learning, {err}): pip install graphlearning, or drop them from the probe's methods"
        ) from None
    return graphlearning


def knn_graph(points: np.ndarray, k: int = GRAPH_NEIGHBOURS):
    """graphlearning's k-NN weight matrix (its defaults) on exact neighbours found by scikit-learn."""
    from sklearn.neighbors import NearestNeighbors

    gl = graphlearning_module()
    distances, indices = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)  # self first
    return gl.weightmatrix.knn(None, k, knn_data=(indices, distances))


def graph_learning_predict(method: str, train_x: np.ndarray, seeds: np.ndarray, test_x: np.ndarray,
                           graph=None) -> np.ndarray:
    """Labels of ``test_x`` by ``poisson`` or ``laplace`` learning on the k-NN graph of the training
    and test codes together, from the labelled training codes of ``seeds`` (class index, -1 =
    unlabelled). ``graph``: that weight matrix when it is already built (one per probe run)."""
    gl = graphlearning_module()
    weights = graph if graph is not None else knn_graph(np.concatenate([train_x, test_x]))
    labelled = np.flatnonzero(seeds >= 0)
    model = {"poisson": gl.ssl.poisson, "laplace": gl.ssl.laplace}[method](weights)
    return np.asarray(model.fit_predict(labelled, seeds[labelled]))[len(train_x):]


def semi_supervised_accuracy(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
    labels_per_class: Sequence[int] = (1, 10, 100), seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = METHODS,
) -> dict[str, dict[int, dict[str, float]]]:
    """{method: {k: {"mean", "std"}}} of test accuracy over ``seeds`` (module docstring)."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown semi-supervised methods {sorted(unknown)}; choose from {list(METHODS)}")
    x, xt = standardise(train_x, test_x)
    y, yt = train_y.numpy(), test_y.numpy()
    graph = knn_graph(np.concatenate([x, xt])) if set(methods) & set(GRAPH_METHODS) else None
    scores: dict[str, dict[int, list[float]]] = {m: {k: [] for k in labels_per_class} for m in methods}
    for k in labels_per_class:
        for seed in seeds:
            idx = draw_labelled(train_y, k, seed).numpy()
            partial = np.full_like(y, -1)
            partial[idx] = y[idx]
            for method in methods:
                if method == "supervised":
                    predicted = supervised_predict(x, partial, xt)
                elif method == "label_spreading":
                    predicted = label_spreading_predict(x, partial, xt)
                elif method == "self_training":
                    predicted = self_training_predict(x, partial, xt)
                else:
                    predicted = graph_learning_predict(method, x, partial, xt, graph)
                scores[method][k].append(float((predicted == yt).mean()))
    return {m: {k: mean_std(v) for k, v in per_k.items()} for m, per_k in scores.items()}


def mean_std(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}
