"""Label-scarce evaluation as callbacks: semi-supervised probes, the DRL paper's SVM/MLP
protocol, and the probe of a time-dependent code E(x0, t) as a function of t.

Like the other probes, each encodes the first ``max_train`` training images (without their
random flips) and ``max_test`` held-out images (validation during fit, test under
``diffrep test``) with the model's public ``encode``; rank 0 fits and
logs. The protocols are in ``diffrep.evaluation.semi_supervised`` and ``.downstream``.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from diffrep.callbacks.base import EvaluationCallback
from diffrep.callbacks.logging import figure_to_image, log_image_grid, log_table
from diffrep.callbacks.probes import _ProbeCallback
from diffrep.errors import ConfigError
from diffrep.evaluation.distributed import map_items
from diffrep.evaluation.downstream import mlp_probe, svm_accuracy
from diffrep.evaluation.probes import linear_probe
from diffrep.evaluation.semi_supervised import METHODS, semi_supervised_accuracy
from diffrep.lightning_modules.api import UnsupportedOperation


class SemiSupervisedProbe(_ProbeCallback):
    """k labels per class, the other training codes unlabelled: test accuracy of the supervised
    logistic regression, label spreading, self-training, Poisson and Laplace learning on the same
    draws (mean and std over ``seeds``), logged as ``semi/<method>_<k>_mean|std`` and as a W&B table."""

    def __init__(self, labels_per_class: tuple[int, ...] = (1, 10, 100), seeds: tuple[int, ...] = (0, 1, 2),
                 methods: tuple[str, ...] = METHODS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.labels_per_class, self.seeds, self.methods = list(labels_per_class), list(seeds), list(methods)

    def score(self, train, test, trainer) -> dict[str, float]:
        result = semi_supervised_accuracy(*train, *test, self.labels_per_class, self.seeds, self.methods)
        out, rows = {}, []
        for method, per_k in result.items():
            for k, r in per_k.items():
                out[f"semi/{method}_{k}_mean"], out[f"semi/{method}_{k}_std"] = r["mean"], r["std"]
                rows.append([method, k, r["mean"], r["std"]])
        log_table(trainer, "tables/semi_supervised", ["method", "labels_per_class", "mean", "std"], rows)
        return out


class DownstreamProbe(_ProbeCallback):
    """The DRL paper's protocol: SVMs on ``svm_labels`` labelled codes and the MLP probe on all
    training codes (``downstream/svm_<n>_mean|std``, ``downstream/mlp_mean|std``)."""

    def __init__(self, svm_labels: tuple[int, ...] = (100, 1000), seeds: tuple[int, ...] = (0, 1, 2),
                 mlp: bool = True, mlp_epochs: int = 100, mlp_lr_grid: tuple[float, ...] = (1e-3, 3e-4, 1e-4),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.svm_labels, self.seeds = list(svm_labels), list(seeds)
        self.mlp, self.mlp_epochs, self.mlp_lr_grid = mlp, mlp_epochs, list(mlp_lr_grid)

    def score(self, train, test, trainer) -> dict[str, float]:
        out = {}
        for n, r in svm_accuracy(*train, *test, self.svm_labels, self.seeds).items():
            out[f"downstream/svm_{n}_mean"], out[f"downstream/svm_{n}_std"] = r["mean"], r["std"]
        if self.mlp:
            r = mlp_probe(*train, *test, lr_grid=self.mlp_lr_grid, seeds=self.seeds, epochs=self.mlp_epochs)
            out["downstream/mlp_mean"], out["downstream/mlp_std"] = r["mean"], r["std"]
        return out


def encode_split_at(model: L.LightningModule, dataset, max_items: int | None, times: list[float],
                    batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """(codes, labels) of a time-dependent code at ``times`` (fractions of the time range), joined."""

    def codes(images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        return {"codes": model.encode(images, times=times).float(), "labels": labels}

    out = map_items(codes, dataset, max_items, batch_size, model.model_device())
    return out["codes"], out["labels"]


class TimeCodeProbe(EvaluationCallback):
    """Probe a time-dependent code E(x0, t) at each t = k/G of a grid (fractions of the time
    range; 0.5, LaplaceNet's initialisation in the DRL paper, is on the default grid) and on the
    codes of all grid points joined: the linear probe and the SVM on ``svm_labels`` labels.
    Logs ``probe_t/<probe>_t<t>`` and ``probe_t/<probe>_joined``, the accuracy-against-t curve as a
    PNG and a W&B line plot. A static code is skipped (nothing depends on t)."""

    def __init__(self, grid: int = 10, svm_labels: int = 1000, seeds: tuple[int, ...] = (0, 1, 2),
                 max_train: int = 10000, max_test: int = 5000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_train, self.max_test = max_train, max_test
        if grid < 1:
            raise ConfigError(f"grid must be >= 1, got {grid}")
        self.times = [k / grid for k in range(grid + 1)]
        self.svm_labels, self.seeds = svm_labels, list(seeds)

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict[str, float]:
        if not getattr(pl_module, "time_dependent", False):
            raise UnsupportedOperation("the code is not time-dependent; TimeCodeProbe applies to E(x0, t)")
        data = trainer.datamodule
        train_set, test_set = data.evaluation_split("train"), self.held_out(trainer, stage)
        per_t = {}
        for t in self.times:
            train = encode_split_at(pl_module, train_set, self.max_train, [t])
            test = encode_split_at(pl_module, test_set, self.max_test, [t])
            per_t[t] = (train, test)
        if not trainer.is_global_zero:
            return {}
        out, rows = {}, []
        for t, (train, test) in per_t.items():
            scores = self._scores(train, test)
            rows.append([t, *scores.values()])
            out.update({f"probe_t/{name}_t{t:.2f}": v for name, v in scores.items()})
        joined = tuple(torch.cat([per_t[t][i][0] for t in self.times], 1) for i in (0, 1))
        labels = per_t[self.times[0]][0][1], per_t[self.times[0]][1][1]
        scores = self._scores((joined[0], labels[0]), (joined[1], labels[1]))
        out.update({f"probe_t/{name}_joined": v for name, v in scores.items()})
        columns = ["t", *scores]
        log_table(trainer, "tables/probe_against_t", columns, rows, line=("t", "linear"))
        log_image_grid(trainer, "probe_against_t", _curve_image(rows, columns, scores), nrow=1)
        return out

    def _scores(self, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> dict[str, float]:
        svm = svm_accuracy(*train, *test, [self.svm_labels], self.seeds)[self.svm_labels]["mean"]
        return {"linear": linear_probe(*train, *test)["accuracy"], f"svm_{self.svm_labels}": svm}


def _curve_image(rows: list[list[float]], columns: list[str], joined: dict[str, float]) -> Tensor:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.subplots()
    for i, name in enumerate(columns[1:], start=1):
        line = ax.plot([r[0] for r in rows], [100 * r[i] for r in rows], marker="o", label=name)[0]
        ax.axhline(100 * joined[name], color=line.get_color(), linestyle="--", linewidth=1,
                   label=f"{name}, all t joined")
    ax.set(xlabel="t (fraction of the time range)", ylabel="test accuracy (%)", title="probe of E(x0, t)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figure_to_image(fig)
