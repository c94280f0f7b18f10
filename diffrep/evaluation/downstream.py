"""The DRL paper's downstream protocol (Mittal et al., ICML 2023; sarthmit/traj_drl's probes).

- SVM: scikit-learn's ``SVC()`` with its defaults (RBF kernel, C = 1, gamma = 'scale') on
  ``n`` labelled training codes drawn class-balanced (n / classes of each), codes standardised
  with the statistics of all training codes; mean and std over seeds.
- MLP probe: code -> 512 -> classes (ReLU, dropout 0.25), Adam with weight decay 1e-5 for 100
  epochs at each learning rate of a small grid; a seeded tenth of the training codes is held out
  (traj_drl: 45k/5k) and the (learning rate, epoch) with the best validation accuracy gives the
  test accuracy; mean and std over 3 seeds. The test split is scored at every epoch but read only
  at the epoch validation chose. Batches of 512 (traj_drl does not fix a size here; larger
  batches keep the 900 short runs of a probe to about half a minute on a 2-core CPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.evaluation.semi_supervised import draw_labelled, mean_std, standardise


def svm_accuracy(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
    num_labels: Sequence[int] = (100, 1000), seeds: Sequence[int] = (0, 1, 2),
) -> dict[int, dict[str, float]]:
    """{n: {"mean", "std"}} of an SVC's test accuracy with n labelled codes (module docstring)."""
    from sklearn.svm import SVC

    x, xt = standardise(train_x, test_x)
    y, yt = train_y.numpy(), test_y.numpy()
    num_classes = len(np.unique(y))
    results = {}
    for n in num_labels:
        if n % num_classes:
            raise ConfigError(f"{n} labels do not split evenly over {num_classes} classes")
        scores = []
        for seed in seeds:
            idx = draw_labelled(train_y, n // num_classes, seed).numpy()
            scores.append(float((SVC().fit(x[idx], y[idx]).predict(xt) == yt).mean()))
        results[n] = mean_std(scores)
    return results


class MLPHead(nn.Sequential):
    """code -> hidden -> classes with ReLU and dropout (traj_drl's probe)."""

    def __init__(self, dim: int, num_classes: int, hidden: int = 512, dropout: float = 0.25) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))


def mlp_probe(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
    lr_grid: Sequence[float] = (1e-3, 3e-4, 1e-4), seeds: Sequence[int] = (0, 1, 2), epochs: int = 100,
    batch_size: int = 512, weight_decay: float = 1e-5, val_fraction: float = 0.1,
) -> dict[str, float]:
    """Mean/std test accuracy of the validation-chosen MLP probe over ``seeds`` (module docstring)."""
    with torch.inference_mode(False), torch.enable_grad():  # callable from `trainer.test`
        x, xt = (torch.from_numpy(a).float() for a in standardise(train_x, test_x))
        y, yt = train_y.long().clone(), test_y.long().clone()
        num_classes = int(max(y.max(), yt.max())) + 1
        scores, chosen_lrs = [], []
        for seed in seeds:
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
            n_val = max(1, int(val_fraction * len(x)))
            val, fit = order[:n_val], order[n_val:]
            best = (-1.0, 0.0, 0.0)  # (val accuracy, test accuracy, lr)
            for lr in lr_grid:
                val_acc, test_acc = _train_mlp(x[fit], y[fit], x[val], y[val], xt, yt, num_classes, lr, seed,
                                               epochs, batch_size, weight_decay)
                if val_acc > best[0]:
                    best = (val_acc, test_acc, lr)
            scores.append(best[1])
            chosen_lrs.append(best[2])
        return {**mean_std(scores), "lr": float(np.median(chosen_lrs))}


def _train_mlp(x: Tensor, y: Tensor, xv: Tensor, yv: Tensor, xt: Tensor, yt: Tensor, num_classes: int, lr: float,
               seed: int, epochs: int, batch_size: int, weight_decay: float) -> tuple[float, float]:
    """(best validation accuracy, test accuracy at that epoch) of one run."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = MLPHead(x.shape[1], num_classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-1.0, 0.0)
    for _ in range(epochs):
        head.train()
        for batch in torch.randperm(len(x), generator=g).split(batch_size):
            loss = nn.functional.cross_entropy(head(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            val_acc = (head(xv).argmax(1) == yv).float().mean().item()
            if val_acc > best[0]:
                best = (val_acc, (head(xt).argmax(1) == yt).float().mean().item())
    return best
