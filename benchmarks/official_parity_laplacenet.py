"""LaplaceNet's half of benchmarks/official_parity.py (see its docstring): PATH is a copy of the
``LaplaceNet/`` folder of korabs-x/representation_score_based, imported at run time on the CPU.

1. Pseudo-labels: the official ``DBSS.one_iter_true`` (lp/db_semisuper.py, called as main.py calls
   it: k = 50, 30 CG iterations, L2-normalised features, inner-product index) against
   ``diffrep.evaluation.graph_pseudo_labels`` on the same features (a 10-class Gaussian mixture, and
   features of a random WRN on the digits): pseudo-labels (count of differences), probabilities and
   weights. The official object is driven without images by setting the attributes the method
   reads. Two calls of the official code are patched for a CPU with current SciPy, as
   ../shared/reference says: ``faiss.index_cpu_to_all_gpus`` keeps the flat index on the CPU, and
   SciPy's ``cg(tol=...)`` is called as ``cg(rtol=..., atol=0)``, the same criterion.
2. The start from a DRL encoder: a score_sde WRN-28-2 encoder's state dict with random weights
   (the ``encoder_state_*.pth`` run_lib.py saves), loaded into the official LaplaceNet WRN by its
   main.py rule (values taken in key order, kept where the size matches; param_t set to
   logit(init_t)) and into diffrep's LaplaceNet classifier by ``classifier_from``: logits and features.
3. One semi-supervised training step on those shared weights: the official ``helpers.train_semi``
   (composite batch of labelled and unlabelled views, mixup, float64 cross-entropy, the cosine lr,
   SGD Nesterov) against LaplaceNet.composite_loss + the module's optimiser and lr, on the same
   views, targets, lambda and permutation: the loss, every gradient, every weight after the step.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import scipy.sparse.linalg
import torch

from diffrep.evaluation.graph_pseudo_labels import graph_pseudo_labels
from diffrep.lightning_modules.laplacenet import LaplaceNet

PSEUDO_TOL, NETWORK_TOL, STEP_TOL = 1e-6, 1e-5, 1e-10
GRADIENT_TOL = 1e-8  # float64, but diffrep's time embedding reads log sigma in float32 (as in training)
KNN, CG_ITERATIONS = 50, 30


@contextlib.contextmanager
def official_on_cpu():
    """faiss's GPU hand-off as the identity; SciPy's removed ``tol`` keyword as ``rtol`` with atol 0."""
    import faiss

    cg, to_gpus = scipy.sparse.linalg.cg, faiss.index_cpu_to_all_gpus

    def cg_with_tol(A, b, tol=None, **kwargs):
        if tol is not None:
            kwargs.update(rtol=tol, atol=0.0)
        return cg(A, b, **kwargs)

    scipy.sparse.linalg.cg, faiss.index_cpu_to_all_gpus = cg_with_tol, lambda index, ngpu=None: index
    try:
        yield
    finally:
        scipy.sparse.linalg.cg, faiss.index_cpu_to_all_gpus = cg, to_gpus


def official_pseudo_labels(features: np.ndarray, labels: np.ndarray, labelled: np.ndarray, num_classes: int):
    from lp.db_semisuper import DBSS

    dataset = DBSS.__new__(DBSS)  # no image folder: the attributes one_iter_true reads
    dataset.all_labels = list(labels)
    dataset.labeled_idx = list(labelled)
    dataset.unlabeled_idx = sorted(set(range(len(labels))) - set(labelled.tolist()))
    dataset.classes = list(range(num_classes))
    with official_on_cpu(), contextlib.redirect_stdout(io.StringIO()):
        dataset.one_iter_true(features.copy(), k=KNN, max_iter=CG_ITERATIONS, l2=True, index="ip")
    return dataset


def mixture_features(n: int = 3000, dim: int = 64, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    centres = rng.normal(size=(classes, dim))
    return (centres[labels] + 1.5 * rng.normal(size=(n, dim))).astype(np.float32), labels


def digit_features() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    from diffrep.nets.wrn import TimeWideResNet

    digits = load_digits()
    torch.manual_seed(0)
    wrn = TimeWideResNet(in_channels=1, depth=10, widen_factor=1).eval()
    images = torch.from_numpy(digits.images / 8.0 - 1).float()[:, None]
    with torch.no_grad():
        return wrn(images, None).numpy().astype(np.float32), digits.target


def pseudo_label_rows() -> list[tuple[str, torch.Tensor, float]]:
    rows = []
    for name, (features, labels) in [("a 10-class Gaussian mixture, 3000 x 64", mixture_features()),
                                     ("random-WRN features of the 1797 digits", digit_features())]:
        labelled = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(10)])
        official = official_pseudo_labels(features, labels, labelled, 10)
        ours = graph_pseudo_labels(features, labels, labelled, 10, knn=KNN, max_iter=CG_ITERATIONS)
        rows.append((f"LaplaceNet pseudo-labels differing, {name}",
                     torch.tensor(float((official.p_labels != ours.labels).sum())), 0.0))
        rows.append((f"LaplaceNet label probabilities, {name}", torch.from_numpy(official.probs_iter - ours.probs),
                     PSEUDO_TOL))
        weights = np.nan_to_num(official.p_weight - ours.weights)  # nan where a row is all zero, on both sides
        rows.append((f"LaplaceNet pseudo-label weights, {name}", torch.from_numpy(weights), PSEUDO_TOL))
    return rows


def official_start(encoder_state: dict[str, torch.Tensor], init_t: float):
    """The official LaplaceNet WRN-28-2 started from a DRL encoder state by main.py's rule."""
    from models.wrn import build_wideresnet

    model = build_wideresnet(28, 2, 0, 10, 2 * 64)
    state = dict(encoder_state)
    state["time_embedding.param_t"] = state["time_embedding.param_t"] * 0 + math.log(init_t / (1 - init_t))
    current = model.state_dict()
    model.load_state_dict({k: v if v.size() == current[k].size() else current[k]
                           for k, v in zip(current, state.values(), strict=False)}, strict=False)
    return model


def drl_encoder_state() -> dict[str, torch.Tensor]:
    """A DRL WRN-28-2 encoder state with every weight random: what run_lib.py saves. score_sde's WRN
    lists the same keys in the same order as LaplaceNet's (a VDRL one adds ``linear_latent`` last),
    so LaplaceNet's own class makes it."""
    from models.wrn import build_wideresnet

    torch.manual_seed(1)
    state = build_wideresnet(28, 2, 0, 10, 128).state_dict()
    out = {}
    for k, v in state.items():  # weights random, BatchNorm statistics random but valid
        if "running_var" in k:
            v = torch.rand_like(v) + 0.5
        elif v.is_floating_point() and "param_t" not in k:
            v = torch.randn_like(v) * 0.1
        out[k] = v
    return out


def network_and_step_rows() -> list[tuple[str, torch.Tensor, float]]:
    import helpers

    encoder_state = drl_encoder_state()
    official = official_start(encoder_state, init_t=0.3)
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "encoder_state_1.pth"
        torch.save(encoder_state, file)
        ours = LaplaceNet(num_classes=10, start={"checkpoint": str(file), "init_t": 0.3}, in_channels=3)
    rows = []
    x = torch.randn(6, 3, 32, 32)
    official.eval(), ours.classifier.eval()
    with torch.no_grad():
        logits, features, _ = official(x, use_param_t=True)
        our_logits, our_features = ours.classifier(x)
    rows.append(("LaplaceNet start from a DRL encoder_state: logits", logits - our_logits, NETWORK_TOL))
    rows.append(("LaplaceNet start from a DRL encoder_state: features", features - our_features, NETWORK_TOL))

    # one semi-supervised step in float64 (float32 rounding through 28 BatchNorm layers reaches 1e-5 of the
    # largest gradient; in float64 any difference left is the math's): 4 labelled + 4 unlabelled images, 2 views
    official.double(), ours.double()
    args = SimpleNamespace(device=torch.device("cpu"), alpha=1.0, batch_size=8, aug_num=2, lr=0.03, epochs=20,
                           lr_rampdown_epochs=30, progress=False)
    g = torch.Generator().manual_seed(3)
    views_l = [torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64) for _ in range(2)]
    views_u = [torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64) for _ in range(2)]
    targets = torch.randint(10, (8,), generator=g)
    epoch = 12
    official.train(), ours.classifier.train()
    model = torch.nn.DataParallel(official)
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    recorded = []
    criterion = helpers.mixup_criterion

    def recording_criterion(pred, y_a, y_b, lam):
        recorded.append(float(lam))
        return criterion(pred, y_a, y_b, lam)

    np.random.seed(5)
    torch.manual_seed(5)
    helpers.mixup_criterion = recording_criterion
    try:
        before = {k: v.clone() for k, v in official.state_dict().items()}
        helpers.train_semi([(views_l, targets[:4])], [(views_u, targets[4:])], model, optimizer, epoch, 0, args)
    finally:
        helpers.mixup_criterion = criterion
    np.random.seed(5)
    torch.manual_seed(5)
    lam, permutation = float(np.random.beta(1.0, 1.0)), torch.randperm(8)
    assert recorded and recorded[0] == lam
    ours.classifier.backbone.load_state_dict(copy.deepcopy(_as_ours(before)), strict=True)
    ours.classifier.linear.load_state_dict({"weight": before["linear.weight"], "bias": before["linear.bias"]})
    our_optimizer = ours.configure_optimizers()
    ours.set_lr(our_optimizer, epoch, 0, 1, args.lr_rampdown_epochs)
    batch = (torch.stack([torch.cat([a, b]) for a, b in zip(views_l, views_u, strict=True)], dim=1), targets,
             torch.ones(8))
    our_optimizer.zero_grad()
    loss = ours.composite_loss(batch, lam, permutation)
    loss.backward()
    official_loss = _official_loss(copy.deepcopy(before), views_l, views_u, targets, lam, permutation)
    rows.append(("LaplaceNet semi-supervised step: loss", torch.tensor(official_loss - float(loss.detach())),
                 STEP_TOL))
    rows += _gradient_rows(official, ours)
    our_optimizer.step()
    after = _as_ours(official.state_dict())
    worst = max((after[k] - v).abs().max() for k, v in ours.classifier.backbone.state_dict().items()
                if v.is_floating_point())
    head = (official.linear.weight - ours.classifier.linear.weight).abs().max()
    rows.append(("LaplaceNet semi-supervised step: every weight after SGD", torch.maximum(worst, head).detach(),
                 STEP_TOL))
    return rows


def _as_ours(official_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from diffrep.nets.ncsnpp_official import wrn_state_dict

    return wrn_state_dict(official_state)


def _official_loss(state, views_l, views_u, targets, lam, permutation) -> float:
    """The official batch loss recomputed in its own model (train_semi returns none)."""
    import helpers
    from models.wrn import build_wideresnet

    model = build_wideresnet(28, 2, 0, 10, 128).double()
    model.load_state_dict(state)
    model.train()
    total = 0.0
    for batch_l, batch_u in zip(views_l, views_u, strict=True):
        mixed = helpers.mixup_data(torch.cat([batch_l, batch_u]), permutation, lam)
        logits, _, _ = model(mixed, use_param_t=True)
        with torch.no_grad():
            total += float(helpers.mixup_criterion(logits.double(), targets, targets[permutation], lam).mean())
    return total / len(views_l)


def _gradient_rows(official, ours) -> list[tuple[str, torch.Tensor, float]]:
    """Every gradient's largest difference relative to the largest gradient of the network: the biases
    of convs that a training-mode BatchNorm follows have zero gradients analytically, whose rounding
    noise (1e-9) a per-tensor ratio would blow up."""
    official_grads = _as_ours({k: p.grad for k, p in official.named_parameters() if p.grad is not None})
    official_grads.update({"linear." + k: p.grad for k, p in official.linear.named_parameters()})
    ours_grads = {**{k: p.grad for k, p in ours.classifier.backbone.named_parameters() if p.grad is not None},
                  **{"linear." + k: p.grad for k, p in ours.classifier.linear.named_parameters()}}
    scale = max(g.abs().max() for g in ours_grads.values())
    worst = max((official_grads[k] - g).abs().max() for k, g in ours_grads.items()) / scale
    return [(f"LaplaceNet semi-supervised step: gradients of {len(ours_grads)} tensors (relative to the largest)",
             worst.detach(), GRADIENT_TOL)]


def laplacenet_rows(path: Path) -> list[tuple[str, torch.Tensor, float]]:
    sys.path.insert(0, str(path))
    try:
        return pseudo_label_rows() + network_and_step_rows()
    finally:
        sys.path.remove(str(path))
