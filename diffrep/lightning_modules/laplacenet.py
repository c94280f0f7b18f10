"""LaplaceNet (Sellars, Aviles-Rivero, Schönlieb 2021) as the DRL paper runs it downstream of its
encoder: korabs-x/representation_score_based, ``LaplaceNet/main.py`` and ``helpers.py``.

A classifier (any diffrep encoder + a linear head; ``diffrep.lightning_modules.encoder_transfer``)
is trained in two phases over ``LaplaceNetDataModule``'s epochs:

1. supervised warm-up (10 epochs of 10 passes over the labelled images);
2. then, at the start of every epoch, the features of every training image (eval mode, no
   augmentation) give a k-NN graph and pseudo-labels by minimising its Laplacian energy
   (``diffrep.evaluation.graph_pseudo_labels``), and the epoch trains on composite batches of
   labelled (weak augmentation) and pseudo-labelled (strong augmentation) images.

The loss of a batch is the mean over its ``aug_num`` views of the cross-entropy (in float64, as
the official code) of the mixed-up views against the mixed targets (mixup: lambda ~ Beta(alpha,
alpha), one permutation per step, drawn from a generator seeded by (seed, step) so resumed runs
draw the same). The official code mixes up in the semi-supervised phase always and in the
warm-up only with ``--mixup`` (off in the DRL command): ``mixup_semi`` and ``mixup_warmup``. Its
loss ignores the pseudo-labels' entropy weights; ``weight_pseudo_labels`` uses them.

SGD with Nesterov momentum 0.9, lr 0.03, weight decay 5e-4; the lr follows the official cosine
ramp-down lr * 0.5 (cos(pi e / (E + 10)) + 1) with e the fractional epoch and E = max_epochs
(within a warm-up epoch each pass restarts the fraction, as the official loop calls it).

``check_t`` (official ``--check_t``): before training, one short supervised run (``check_t_epochs``
warm-up epochs) per candidate t from the start weights with param_t = logit(t); the state with
the lowest supervised training loss of any epoch is kept and training continues from it with the
semi-supervised phase (the warm-up is done), as the official loop does. Nothing but the training
loss chooses: no held-out split, and never the test split.

Validation reports accuracy on the datamodule's validation split every epoch; ``diffrep test``
the test split. The official loop evaluates the test set every epoch; here nothing is chosen on it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from diffrep.datamodules.laplacenet import LaplaceNetDataModule, item_seed
from diffrep.errors import ConfigError
from diffrep.evaluation.graph_pseudo_labels import graph_pseudo_labels
from diffrep.lightning_modules.api import evaluating
from diffrep.lightning_modules.encoder_transfer import classifier_from
from diffrep.nets.classifier import logit

T_CANDIDATES = tuple(float(t) for t in np.linspace(0, 1, 11).clip(1e-2, 1 - 1e-2))  # the official grid


def cosine_rampdown(epoch: float, length: float) -> float:
    """0.5 (cos(pi epoch / length) + 1) (Loshchilov & Hutter 2017, one cycle), as LaplaceNet's helpers."""
    if not 0 <= epoch <= length:
        raise ConfigError(f"the lr ramp-down is {length} epochs long; epoch {epoch} is outside it")
    return 0.5 * (math.cos(math.pi * epoch / length) + 1)


def mixup_loss(logits: Tensor, targets: Tensor, permutation: Tensor, lam: float,
               weights: Tensor | None = None) -> Tensor:
    """lam CE(y) + (1 - lam) CE(y[perm]) per item in float64, optionally weighted, averaged."""
    logits = logits.double()
    loss_a = F.cross_entropy(logits, targets, reduction="none")
    loss_b = F.cross_entropy(logits, targets[permutation], reduction="none")
    if weights is not None:
        loss_a, loss_b = loss_a * weights.double(), loss_b * weights[permutation].double()
    return (lam * loss_a + (1 - lam) * loss_b).mean()


class LaplaceNet(L.LightningModule):
    def __init__(
        self,
        num_classes: int = 10,
        encoder_checkpoint: str | None = None,
        encoder_weights: str = "raw",
        init_t: float = 0.5,
        encoder: str = "wrn28_2",
        encoder_kwargs: dict[str, Any] | None = None,
        latent_dim: int = 128,
        in_channels: int = 1,
        image_size: int = 32,
        channel_mean: Sequence[float] | None = None,
        channel_std: Sequence[float] | None = None,
        check_t: bool = False,
        t_candidates: Sequence[float] = T_CANDIDATES,
        check_t_epochs: int = 10,
        knn: int = 50,
        graph_alpha: float = 0.99,
        cg_iterations: int = 30,
        cg_tol: float = 1e-3,
        neighbour_search: str = "auto",
        mixup_alpha: float = 1.0,
        mixup_warmup: bool = False,
        mixup_semi: bool = True,
        weight_pseudo_labels: bool = False,
        lr: float = 0.03,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 5e-4,
        rampdown_extra_epochs: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.classifier, self.source = classifier_from(
            encoder_checkpoint, num_classes, encoder_weights, init_t, encoder, encoder_kwargs, latent_dim,
            in_channels, image_size, list(channel_mean) if channel_mean else None,
            list(channel_std) if channel_std else None)
        if check_t and not hasattr(self.classifier.backbone, "param_t"):
            raise ConfigError("check_t chooses the noise level t of a time-conditioned WRN; this encoder has none")
        if mixup_alpha <= 0:
            raise ConfigError(f"mixup_alpha is the Beta distribution's parameter, > 0; got {mixup_alpha}")
        self.chosen_t: float | None = None  # check_t's choice, once made (checkpointed)
        self._minutes_before = 0.0  # wall minutes of fitting before this process (checkpointed)
        self._fit_started = time.perf_counter()
        self._epoch_offset = 0  # epochs of the lr schedule already spent by check_t's runs

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
        return max_epochs + self._epoch_offset + self.hparams.rampdown_extra_epochs

    def set_lr(self, optimizer: torch.optim.Optimizer, epoch: int, step_in_pass: int, steps_per_pass: int,
               length: float) -> float:
        lr = self.hparams.lr * cosine_rampdown(epoch + step_in_pass / steps_per_pass, length)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def mixup_draw(self, step: int, n: int, mixup: bool, stream: int = 0) -> tuple[float, Tensor]:
        """(lambda ~ Beta(alpha, alpha), permutation of the batch; the identity without mixup) of a step."""
        rng = np.random.default_rng(item_seed(self.hparams.seed, stream, step))
        lam = float(rng.beta(self.hparams.mixup_alpha, self.hparams.mixup_alpha))
        return lam, torch.as_tensor(rng.permutation(n) if mixup else np.arange(n), device=self.device)

    def composite_loss(self, batch: Any, lam: float, permutation: Tensor) -> Tensor:
        """The mean over views of the mixed-up cross-entropy (module docstring)."""
        views, targets, weights = batch  # (B, A, C, H, W), (B,), (B,)
        weights = weights if self.hparams.weight_pseudo_labels else None
        loss = 0.0
        for view in views.unbind(1):
            mixed = lam * view + (1 - lam) * view[permutation]
            loss = loss + mixup_loss(self.classifier(mixed)[0], targets, permutation, lam, weights)
        return loss / views.shape[1]

    # --------------------------------------------------------------- training
    def fit_minutes(self) -> float:
        """Wall minutes spent fitting, over every resumed process (the accuracy-against-minutes curve)."""
        return self._minutes_before + (time.perf_counter() - self._fit_started) / 60

    def on_fit_start(self) -> None:
        self._fit_started = time.perf_counter()
        if self.hparams.check_t:
            if self.chosen_t is None:
                self.run_check_t()
            self.data.skip_warmup()  # check_t's runs were the warm-up
            self._epoch_offset = self.hparams.check_t_epochs

    def on_train_epoch_start(self) -> None:
        if self.data.batches.is_warmup(self.current_epoch):
            return
        start = time.perf_counter()
        features = self.train_features()
        h = self.hparams
        result = graph_pseudo_labels(features, self.data.train_labels.numpy(), self.data.labelled.numpy(),
                                     h.num_classes, h.knn, h.graph_alpha, h.cg_iterations, h.cg_tol,
                                     h.neighbour_search)
        self.data.set_pseudo_labels(torch.from_numpy(result.labels), torch.from_numpy(result.weights))
        self.log_dict({"pseudo/accuracy": result.accuracy, "pseudo/accuracy_before_alignment":
                       result.accuracy_before_alignment, "pseudo/seconds": time.perf_counter() - start})

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        epoch = self.current_epoch
        per_pass = self.data.batches.batches_per_pass(epoch)
        lr = self.set_lr(self.optimizers().optimizer, epoch + self._epoch_offset, batch_idx % per_pass, per_pass,
                         self.rampdown_length())
        self.log("train/lr", lr)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        warmup = self.data.batches.is_warmup(self.current_epoch)
        mixup = self.hparams.mixup_warmup if warmup else self.hparams.mixup_semi
        loss = self.composite_loss(batch, *self.mixup_draw(self.global_step, len(batch[1]), mixup))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        self.log("val/accuracy", (self(images).argmax(1) == labels).float().mean(), prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.state.fn == "fit":
            self.log("time/fit_minutes", self.fit_minutes())

    def test_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        self.log("test/accuracy", (self(images).argmax(1) == labels).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        h = self.hparams
        return torch.optim.SGD(self.classifier.parameters(), lr=h.lr, momentum=h.momentum, nesterov=h.nesterov,
                               weight_decay=h.weight_decay)

    # ---------------------------------------------------------------- check_t
    def run_check_t(self) -> None:
        """Short supervised runs per candidate t; keep the lowest-training-loss state (module docstring)."""
        h, start = self.hparams, copy.deepcopy(self.classifier.state_dict())
        best: dict[str, Any] = {"loss": math.inf}
        length = self.rampdown_length() + h.check_t_epochs
        step = 0
        for run, t in enumerate(h.t_candidates):
            self.classifier.load_state_dict(start)
            with torch.no_grad():
                self.classifier.backbone.param_t.fill_(logit(t))
            self.classifier.train()
            optimizer = torch.optim.SGD(self.classifier.parameters(), lr=h.lr, momentum=h.momentum,
                                        nesterov=h.nesterov, weight_decay=h.weight_decay)
            for epoch in range(h.check_t_epochs):
                loader = self.data.check_t_dataloader(run, epoch)
                per_pass, losses = self.data.batches.labelled_batches_per_pass, []
                for i, batch in enumerate(loader):
                    batch = [b.to(self.device) for b in batch]
                    self.set_lr(optimizer, epoch, i % per_pass, per_pass, length)
                    optimizer.zero_grad()
                    lam, permutation = self.mixup_draw(step, len(batch[1]), h.mixup_warmup, stream=1)
                    loss = self.composite_loss(batch, lam, permutation)
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                    step += 1
                mean = float(np.mean(losses))
                if mean < best["loss"]:
                    best = {"loss": mean, "t": t, "epoch": epoch, "state": copy.deepcopy(self.classifier.state_dict())}
        self.classifier.load_state_dict(best["state"])
        self.chosen_t = float(best["t"])
        self.print(f"check_t: t = {best['t']:.2f} (epoch {best['epoch']}, training loss {best['loss']:.4f})")

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["diffrep"] = {"method": "LaplaceNet", "encoder_source": self.source, "chosen_t": self.chosen_t,
                                 "fit_minutes": self.fit_minutes()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("diffrep", {})
        self.chosen_t, self._minutes_before = meta.get("chosen_t"), float(meta.get("fit_minutes", 0.0))
