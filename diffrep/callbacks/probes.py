"""Representation quality during fit and test: linear/k-NN probes, few-label accuracy, latent plots.

Each callback encodes the first ``max_train`` training and ``max_test`` held-out images (the
validation split during fit, the test split under ``diffrep test``) with the model's public
``encode`` (EMA weights, eval mode, restored afterwards). Under DDP every rank
encodes its share and the codes are gathered; rank 0 fits the probes once and logs them.
Scalars go to every logger (``probe/...``), plots to the run folder and the loggers.
"""

from __future__ import annotations

from abc import abstractmethod

import lightning as L
import torch
from torch import Tensor

from diffrep.callbacks.base import EvaluationCallback
from diffrep.callbacks.logging import figure_to_image, log_image_grid, log_table
from diffrep.errors import ConfigError
from diffrep.evaluation.features import encode_split
from diffrep.evaluation.probes import few_label_accuracy, knn_accuracy, linear_probe


class _ProbeCallback(EvaluationCallback):
    def __init__(self, every_n_epochs: int = 1, max_train: int = 10000, max_test: int = 5000, seed: int = 0,
                 every_n_steps: int | None = None, timestep_grid: str | None = None) -> None:
        super().__init__(every_n_epochs, seed, every_n_steps, timestep_grid)
        self.max_train, self.max_test = max_train, max_test

    @abstractmethod
    def score(self, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], trainer: L.Trainer) -> dict[str, float]:
        """Scalars to log, from (codes, labels) of the training and the held-out split."""

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict[str, float]:
        train = encode_split(pl_module, trainer.datamodule.evaluation_split("train"), self.max_train)
        test = encode_split(pl_module, self.held_out(trainer, stage), self.max_test)
        if (train[1] < 0).all():
            raise ConfigError(f"{type(self).__name__} needs labels; this data set has none, remove the callback")
        return self.score(train, test, trainer) if trainer.is_global_zero else {}


class LinearProbe(_ProbeCallback):
    """Logistic-regression (L2 chosen on a part of the training codes) and cosine 20-NN accuracy on the
    held-out split."""

    def score(self, train, test, trainer) -> dict[str, float]:
        result = linear_probe(*train, *test)
        log_per_class_accuracy(trainer, "tables/linear_probe_per_class", result["per_class"])
        return {"probe/linear_accuracy": result["accuracy"], "probe/linear_l2": result["l2"],
                "probe/knn_accuracy": knn_accuracy(*train, *test)}


def log_per_class_accuracy(trainer: L.Trainer, key: str, per_class: dict[int, float]) -> None:
    """A (class, name, accuracy) table, named by the data set's ``class_names`` where it has them."""
    names = getattr(trainer.datamodule, "class_names", None) or ()
    rows = [[c, names[c] if c < len(names) else str(c), acc] for c, acc in sorted(per_class.items())]
    log_table(trainer, key, ["class", "name", "accuracy"], rows)


class FewLabelProbe(_ProbeCallback):
    """Held-out accuracy with k labels per class (mean and std over seeds)."""

    def __init__(
        self, labels_per_class: tuple[int, ...] = (1, 10, 100), seeds: tuple[int, ...] = (0, 1, 2), **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.labels_per_class, self.seeds = list(labels_per_class), list(seeds)

    def score(self, train, test, trainer) -> dict[str, float]:
        result = few_label_accuracy(*train, *test, labels_per_class=self.labels_per_class, seeds=self.seeds)
        out = {}
        for k, r in result.items():
            out[f"probe/few_label_{k}_mean"], out[f"probe/few_label_{k}_std"] = r["mean"], r["std"]
        return out


class LatentPlot(_ProbeCallback):
    """A 2-D scatter of held-out codes coloured by label: the codes themselves if 2-D, else their PCA."""

    def score(self, train, test, trainer) -> dict[str, float]:
        codes, labels = test
        if codes.shape[1] > 2:
            centred = codes - codes.mean(0)
            _, _, v = torch.pca_lowrank(centred, q=2, center=False)
            codes = centred @ v[:, :2]
        names = getattr(trainer.datamodule, "class_names", None)
        log_image_grid(trainer, "latent_plot", _scatter_image(codes, labels, names), nrow=1)
        return {}


def _scatter_image(points: Tensor, labels: Tensor, class_names: tuple[str, ...] | None = None) -> Tensor:
    """Render a labelled scatter plot to a (1, 3, H, W) image in [-1, 1]; the legend names the
    classes when the data set knows them."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)  # no pyplot: nothing process-wide (backend, figure registry) changes
    ax = fig.subplots()
    scatter = ax.scatter(points[:, 0].numpy(), points[:, 1].numpy(), c=labels.numpy(), cmap="tab10", s=4)
    handles, names = scatter.legend_elements()
    if class_names:
        present = sorted(int(c) for c in labels.unique())
        names = [class_names[c] if 0 <= c < len(class_names) else str(c) for c in present]
    ax.legend(handles, names, loc="best", fontsize=6, markerscale=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return figure_to_image(fig)
