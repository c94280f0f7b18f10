"""LaplaceNet's pseudo-labels (Sellars et al. 2021): minimise the Laplacian energy on a k-NN graph of
the network's features, as the official LaplaceNet code that the DRL paper runs does it
(korabs-x/representation_score_based, ``LaplaceNet/lp/db_semisuper.py``, ``DBSS.one_iter_true``).

1. Features L2-normalised; the exact k + 1 nearest neighbours of every point by inner product,
   the first (the point itself) dropped; the similarities are the edge weights.
2. W symmetrised by the elementwise maximum, its diagonal removed, normalised D^-1/2 W D^-1/2.
3. For each class c, (I - alpha Wn) z_c = y_c (y_c: one-hot of the labelled points) by conjugate
   gradient from zero, ``max_iter`` iterations at relative tolerance ``tol`` (LaplaceNet's main.py
   calls it with 30 and 1e-3; alpha 0.99).
4. Z clipped at 0, each row normalised to sum 1 (the official ``F.normalize(Z, 1)``: its second
   argument is the norm's order p = 1, so an L1 normalisation along rows, not the L2 one its look
   suggests; the parity harness settles it), labelled rows one-hot; then the distribution
   alignment (100 rounds: unlabelled rows scaled per class by the labelled / predicted class
   frequency, clipped to [0.99, 1.01], normalised again), labelled rows one-hot again;
   pseudo-label = argmax.
5. Weights 1 - H(p) / log(C) (scipy's entropy of the row normalised to sum 1), 1 for labelled.
   The official training loss does not use them (``helpers.train_semi``); LaplaceNet's
   ``weight_pseudo_labels`` option does.

Libraries, and why: the neighbour search is faiss's exact ``IndexFlatIP`` (faiss-cpu), the same
index the official code builds, so the graph is the official one to the last tie; where faiss is
not installed, PyTorch's exact matmul + top-k in chunks gives the same neighbours up to ties. The
solve is SciPy's sparse CG, as the official code (``rtol``: the keyword SciPy renamed from ``tol``;
``atol`` 0 keeps its relative meaning). The distribution alignment is vectorised with bincount
(the official loops in Python over every unlabelled point 100 times; same numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import scipy.stats
import torch

from diffrep.errors import ConfigError

KNN = 50
ALPHA = 0.99
CG_ITERATIONS = 30  # as LaplaceNet's main.py calls one_iter_true (the function's own default is 20)
CG_TOL = 1e-3
ALIGNMENT_ROUNDS = 100
ALIGNMENT_CLIP = (0.99, 1.01)


@dataclass
class PseudoLabels:
    """Per training item: class probabilities (N, C), pseudo-labels (N,) and weights (N,); labelled
    items carry their own label with weight 1. ``accuracy``: of the unlabelled items' pseudo-labels
    against their true labels, before and after the alignment (a diagnostic; nothing is chosen by it)."""

    probs: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    accuracy_before_alignment: float
    accuracy: float


def l2_normalised(features: np.ndarray) -> np.ndarray:
    """float32 rows of unit L2 norm (faiss's ``normalize_L2``: a zero row stays zero)."""
    x = np.ascontiguousarray(features, dtype=np.float32).copy()
    norms = np.sqrt((x.astype(np.float64) ** 2).sum(1, keepdims=True)).astype(np.float32)
    return x / np.where(norms > 0, norms, 1.0)


def nearest_by_inner_product(x: np.ndarray, k: int, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices), each (N, k + 1), of the k + 1 largest inner products of each row,
    itself included, in decreasing order. ``backend``: 'faiss', 'torch' or 'auto' (faiss if installed)."""
    if backend not in ("auto", "faiss", "torch"):
        raise ConfigError(f"unknown neighbour search {backend!r}; choose 'auto', 'faiss' or 'torch'")
    if k + 1 > len(x):
        raise ConfigError(f"a {k}-NN graph needs more than {k} points; got {len(x)} (lower knn)")
    if backend in ("auto", "faiss"):
        try:
            import faiss
        except ImportError:
            if backend == "faiss":
                raise ConfigError("the 'faiss' neighbour search needs faiss-cpu: pip install faiss-cpu") from None
        else:
            index = faiss.IndexFlatIP(x.shape[1])
            index.add(x)
            similarities, indices = index.search(x, k + 1)
            return similarities, indices.astype(np.int64)
    points = torch.from_numpy(x)
    sims, idx = [], []
    for start in range(0, len(points), 4096):
        top = (points[start:start + 4096] @ points.T).topk(k + 1, dim=1)
        sims.append(top.values)
        idx.append(top.indices)
    return torch.cat(sims).numpy(), torch.cat(idx).numpy()


def normalised_affinity(similarities: np.ndarray, indices: np.ndarray) -> scipy.sparse.csr_matrix:
    """D^-1/2 W D^-1/2 of the symmetrised k-NN graph (self, the first neighbour, dropped)."""
    n, k = indices.shape[0], indices.shape[1] - 1
    rows = np.repeat(np.arange(n), k)
    w = scipy.sparse.csr_matrix((similarities[:, 1:].ravel(), (rows, indices[:, 1:].ravel())), shape=(n, n))
    w = w.maximum(w.T)
    w = w - scipy.sparse.diags(w.diagonal())
    degree = np.asarray(w.sum(axis=1)).ravel()
    degree[degree == 0] = 1
    d = scipy.sparse.diags(1.0 / np.sqrt(degree))
    return (d @ w @ d).tocsr()


def laplace_solution(affinity: scipy.sparse.csr_matrix, labels: np.ndarray, labelled: np.ndarray,
                     num_classes: int, alpha: float = ALPHA, max_iter: int = CG_ITERATIONS,
                     tol: float = CG_TOL) -> np.ndarray:
    """Z (N, C): (I - alpha Wn) z_c = y_c by CG for each class, clipped at 0."""
    n = affinity.shape[0]
    system = scipy.sparse.eye(n) - alpha * affinity
    seeds = np.zeros((n, num_classes))
    seeds[labelled, labels[labelled]] = 1
    z = np.zeros((n, num_classes))
    for c in range(num_classes):
        z[:, c] = scipy.sparse.linalg.cg(system, seeds[:, c], rtol=tol, atol=0.0, maxiter=max_iter)[0]
    return np.maximum(z, 0)


def _row_l1(p: np.ndarray) -> np.ndarray:
    """``torch.nn.functional.normalize(p, 1)`` (p = 1, dim = 1): rows over max(sum |p|, 1e-12)."""
    return p / np.maximum(np.abs(p).sum(axis=1, keepdims=True), 1e-12)


def _one_hot_labelled(probs: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    probs[labelled] = 0
    probs[labelled, labels[labelled]] = 1
    return probs


def align_distribution(probs: np.ndarray, labels: np.ndarray, labelled: np.ndarray, unlabelled: np.ndarray,
                       rounds: int = ALIGNMENT_ROUNDS) -> np.ndarray:
    """The official ``dis_align``: nudge the unlabelled rows' class frequencies toward the labelled ones."""
    c = probs.shape[1]
    probs = _row_l1(probs)
    target = np.bincount(labels[labelled], minlength=c) / len(labelled)
    for _ in range(rounds):
        predicted = np.bincount(probs[unlabelled].argmax(1), minlength=c) / len(unlabelled)
        factor = np.clip(target / (predicted + 1e-7), *ALIGNMENT_CLIP)
        probs[unlabelled] = probs[unlabelled] * factor
        probs = _row_l1(probs)
    return probs


def graph_pseudo_labels(features: np.ndarray, labels: np.ndarray, labelled: np.ndarray, num_classes: int,
                        knn: int = KNN, alpha: float = ALPHA, max_iter: int = CG_ITERATIONS, tol: float = CG_TOL,
                        search: str = "auto") -> PseudoLabels:
    """Pseudo-labels of every training item from its features (N, D) and the labels of the items
    ``labelled`` (indices; ``labels`` of the others are only read for the accuracy diagnostic)."""
    labels = np.asarray(labels, dtype=np.int64)
    labelled = np.asarray(labelled, dtype=np.int64)
    if len(labelled) == 0:
        raise ConfigError("graph pseudo-labels need at least one labelled item")
    unlabelled = np.setdiff1d(np.arange(len(features)), labelled)
    similarities, indices = nearest_by_inner_product(l2_normalised(features), knn, search)
    z = laplace_solution(normalised_affinity(similarities, indices), labels, labelled, num_classes, alpha, max_iter,
                         tol)
    probs = _one_hot_labelled(_row_l1(z), labels, labelled)
    before = _accuracy(probs, labels, unlabelled)
    probs = _one_hot_labelled(align_distribution(probs, labels, labelled, unlabelled), labels, labelled)
    with np.errstate(invalid="ignore", divide="ignore"):  # an all-zero row: scipy's entropy is nan, as official
        weights = 1 - scipy.stats.entropy(probs.T) / np.log(num_classes)
    weights[labelled] = 1.0
    return PseudoLabels(probs, probs.argmax(1), weights, before, _accuracy(probs, labels, unlabelled))


def _accuracy(probs: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray) -> float:
    return float((probs[unlabelled].argmax(1) == labels[unlabelled]).mean()) if len(unlabelled) else float("nan")
