"""LaplaceNet (Sellars, Aviles-Rivero, Schönlieb 2021) as the DRL paper runs it downstream of its
encoder: korabs-x/representation_score_based, ``LaplaceNet/main.py`` and ``helpers.py``.

A classifier (any diffrep encoder + a linear head, ``encoder_transfer.classifier_from``) trains over
``LaplaceNetDataModule``'s epochs: a supervised warm-up on the labelled images, then every epoch the
features of every training image (eval mode, no augmentation) give a k-NN graph and pseudo-labels by
minimising its Laplacian energy (``diffrep.evaluation.graph_pseudo_labels``), and the epoch trains on
composite batches of labelled (weak augmentation) and pseudo-labelled (strong augmentation) views.

Each step's math (the lr ramp-down, the mixup draw, the loss over views) is ``laplacenet_steps``'s. SGD
follows the official cosine ramp-down, lr 0.5 (cos(pi e / (E + 10)) + 1) at fractional epoch e (within a
warm-up epoch each labelled pass restarts the fraction, as the official loop calls it). Validation
accuracy every epoch; the test split only under ``diffrep test`` (the official loop evaluates test every
epoch; here nothing is chosen on it). Each setting group: ``laplacenet_settings``; the schedule and
options in full: docs/methods.md, "LaplaceNet".
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from diffrep.datamodules.laplacenet import LaplaceNetDataModule
from diffrep.errors import ConfigError
from diffrep.evaluation.graph_pseudo_labels import graph_pseudo_labels
from diffrep.lightning_modules.api import evaluating
from diffrep.lightning_modules.encoder_transfer import classifier_from
from diffrep.lightning_modules.laplacenet_choose_t import choose_t
from diffrep.lightning_modules.laplacenet_settings import (
    LAPLACENET_GROUPS,
    T_CANDIDATES,
    ChooseT,
    MixupSettings,
    PseudoLabelSettings,
    SGDSchedule,
    StartSettings,
)
from diffrep.lightning_modules.laplacenet_steps import (
    FitClock,
    composite_loss,
    mixup_draw,
    set_rampdown_lr,
)
from diffrep.lightning_modules.settings import Standardisation, as_saved, grouped_settings

__all__ = ["T_CANDIDATES", "LaplaceNet"]


class LaplaceNet(L.LightningModule):
    def __init__(
        self,
        num_classes: int = 10,
        start: StartSettings = StartSettings(),
        encoder: str | dict[str, Any] = "wrn28_2",
        latent_dim: int = 128,
        in_channels: int = 1,
        image_size: int = 32,
        standardise: Standardisation | None = None,
        choose_t: ChooseT = ChooseT(),
        pseudo_labels: PseudoLabelSettings = PseudoLabelSettings(),
        mixup: MixupSettings = MixupSettings(),
        optimisation: SGDSchedule = SGDSchedule(),
        seed: int = 0,
    ) -> None:
        """``start``: the weights (a checkpoint, or random init); ``encoder`` (a name, ``{kind: NAME, <its
        settings>}`` or your ``{class_path, init_args}``), ``latent_dim``, ``in_channels`` and ``image_size``
        build it when ``start.checkpoint`` is None (a checkpoint brings its own); ``standardise``: the data
        space of a network trained on standardised pixels (a DRL checkpoint's own is read from it)."""
        super().__init__()
        self.settings = grouped_settings(type(self), LAPLACENET_GROUPS, start=start, standardise=standardise,
                                         choose_t=choose_t, pseudo_labels=pseudo_labels, mixup=mixup,
                                         optimisation=optimisation)
        self.save_hyperparameters()
        self.hparams.update(as_saved(self.settings))
        begin, std = self.settings["start"], self.settings["standardise"]
        self.classifier, self.source = classifier_from(
            begin.checkpoint, num_classes, begin.weights, begin.init_t, encoder, latent_dim, in_channels, image_size,
            list(std.mean) if std else None, list(std.std) if std else None)
        if self.settings["choose_t"].enabled and not hasattr(self.classifier.backbone, "param_t"):
            raise ConfigError("choose_t picks the noise level t of a time-conditioned WRN; this encoder has none")
        self.chosen_t: float | None = None  # choose_t's choice, once made (checkpointed)
        self.clock = FitClock()  # wall minutes of fitting, over resumed processes (checkpointed)
        self._epoch_offset = 0  # epochs of the lr schedule already spent by choose_t's runs

    # ------------------------------------------------------------------ parts
    @property
    def data(self) -> LaplaceNetDataModule:
        dm = getattr(self.trainer, "datamodule", None)
        if not isinstance(dm, LaplaceNetDataModule):
            raise ConfigError("LaplaceNet trains on LaplaceNetDataModule's batches; use --data "
                              "diffrep.datamodules.LaplaceNetDataModule (configs/laplacenet.yaml shows how)")
        return dm

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(x)[0]

    def encode(self, x0: Tensor) -> Tensor:
        """The backbone's features (what the graph is built on), for the probes of the evaluation suite."""
        with evaluating(self):
            return self.classifier.features(x0)

    def train_features(self) -> np.ndarray:
        """float32 features of every training image in order, in eval mode (official extract_features)."""
        with evaluating(self.classifier), self.trainer.precision_plugin.forward_context():
            feats = [self.classifier.features(images.to(self.device)).float().cpu()
                     for images, _ in self.data.feature_dataloader()]
        return torch.cat(feats).numpy()

    def rampdown_length(self) -> float:
        max_epochs = self.trainer.max_epochs if self.trainer is not None else None
        if max_epochs is None or max_epochs < 1:
            raise ConfigError("LaplaceNet's learning rate ramps down over max_epochs + 10 epochs: set "
                              "--trainer.max_epochs (the official CIFAR-10 command trains 260)")
        return max_epochs + self._epoch_offset + self.settings["optimisation"].rampdown_extra_epochs

    def set_lr(self, optimizer: torch.optim.Optimizer, epoch: int, step_in_pass: int, steps_per_pass: int,
               length: float) -> float:
        return set_rampdown_lr(optimizer, self.settings["optimisation"].lr, epoch + step_in_pass / steps_per_pass,
                               length)

    def mixup_draw(self, step: int, n: int, mixup: bool, stream: int = 0) -> tuple[float, Tensor]:
        return mixup_draw(self.hparams.seed, stream, step, n, self.settings["mixup"].alpha, mixup, self.device)

    def composite_loss(self, batch: Any, lam: float, permutation: Tensor) -> Tensor:
        return composite_loss(self.classifier, batch, lam, permutation, self.settings["pseudo_labels"].weighted)

    # --------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        self.clock.start()
        if self.settings["choose_t"].enabled:
            if self.chosen_t is None:
                best = choose_t(self)
                self.chosen_t = best["t"]
                self.print(f"choose_t: t = {best['t']:.2f} (epoch {best['epoch']}, training loss {best['loss']:.4f})")
            self.data.skip_warmup()  # choose_t's runs were the warm-up
            self._epoch_offset = self.settings["choose_t"].epochs

    def on_train_epoch_start(self) -> None:
        if self.data.batches.is_warmup(self.current_epoch):
            return
        begin, graph = time.perf_counter(), self.settings["pseudo_labels"]
        result = graph_pseudo_labels(self.train_features(), self.data.train_labels.numpy(),
                                     self.data.labelled.numpy(), self.hparams.num_classes, graph.knn, graph.alpha,
                                     graph.cg_iterations, graph.cg_tol, graph.neighbour_search)
        self.data.set_pseudo_labels(torch.from_numpy(result.labels), torch.from_numpy(result.weights))
        self.log_dict({"pseudo/accuracy": result.accuracy, "pseudo/accuracy_before_alignment":
                       result.accuracy_before_alignment, "pseudo/seconds": time.perf_counter() - begin})

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        epoch = self.current_epoch
        per_pass = self.data.batches.batches_per_pass(epoch)
        lr = self.set_lr(self.optimizers().optimizer, epoch + self._epoch_offset, batch_idx % per_pass, per_pass,
                         self.rampdown_length())
        self.log("train/lr", lr)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        warmup = self.data.batches.is_warmup(self.current_epoch)
        mixup = self.settings["mixup"].warmup if warmup else self.settings["mixup"].semi
        loss = self.composite_loss(batch, *self.mixup_draw(self.global_step, len(batch[1]), mixup))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        self.log("val/accuracy", (self(images).argmax(1) == labels).float().mean(), prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.state.fn == "fit":
            self.log("time/fit_minutes", self.clock.minutes())

    def test_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        self.log("test/accuracy", (self(images).argmax(1) == labels).float().mean())

    def make_optimizer(self) -> torch.optim.Optimizer:
        sgd = self.settings["optimisation"]
        return torch.optim.SGD(self.classifier.parameters(), lr=sgd.lr, momentum=sgd.momentum, nesterov=sgd.nesterov,
                               weight_decay=sgd.weight_decay)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.make_optimizer()

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["diffrep"] = {"method": "LaplaceNet", "encoder_source": self.source, "chosen_t": self.chosen_t,
                                 "fit_minutes": self.clock.minutes()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("diffrep", {})
        self.chosen_t = meta.get("chosen_t")
        self.clock.resume_from(meta.get("fit_minutes", 0.0))
