"""An online linear probe during training (as solo-learn does): representation quality on the
dashboard as the model trains, without the pause of the epoch-end probes.

After each training batch the batch's images are encoded with the model's public ``encode``
(EMA weights, no gradients), and a linear head (a non-affine BatchNorm, then one linear layer)
takes one Adam step on those detached codes and the batch's labels. The accuracy of the head on
each batch *before* its step (so on codes it has not fitted yet) is averaged over the last
``every_n_steps`` steps and logged as ``probe/online_accuracy``.

It never touches the method: codes are detached, the head has its own optimiser, and encoding
runs inside a forked RNG, so the method's weights after N steps are bit-identical with and
without it (tested). Its cost is one encoder forward per step. The head and its optimiser are
saved in the checkpoint (callback state), so a resumed run continues the same probe.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from diffrep import rng
from diffrep.errors import ConfigError


class OnlineLinearProbe(L.Callback):
    def __init__(self, every_n_steps: int = 50, lr: float = 1e-3, num_classes: int | None = None) -> None:
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps, self.lr, self.num_classes = every_n_steps, lr, num_classes
        self.head: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending_state: dict[str, Any] | None = None
        self._correct = self._seen = 0

    def _build(self, dim: int, num_classes: int, device: torch.device) -> None:
        self.head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes)).to(device)
        self.optimizer = torch.optim.Adam(self.head.parameters(), lr=self.lr)
        if self._pending_state is not None:
            self.head.load_state_dict(self._pending_state["head"])
            self.optimizer.load_state_dict(self._pending_state["optimizer"])
            self._pending_state = None

    def _num_classes(self, trainer: L.Trainer, labels: Tensor) -> int:
        if self.num_classes:
            return self.num_classes
        names = getattr(trainer.datamodule, "class_names", None)
        if names:
            return len(names)
        train = trainer.datamodule.splits["train"]
        return int(train.labels.max()) + 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        images, labels = batch[0], batch[1]
        if (labels < 0).all():
            return
        with rng.forked(pl_module.device):  # the method's noise stream
            codes = pl_module.encode(images).detach().float()
            labels = labels.to(codes.device).long()
            if self.head is None:  # its initialisation draws random numbers too
                self._build(codes.shape[1], self._num_classes(trainer, labels), codes.device)
            with torch.enable_grad():
                self.head.train()
                logits = self.head(codes)
                loss = nn.functional.cross_entropy(logits, labels)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        self._correct += int((logits.argmax(1) == labels).sum())
        self._seen += len(labels)
        if trainer.global_step % self.every_n_steps == 0 and self._seen:
            pl_module.log("probe/online_accuracy", self._correct / self._seen, rank_zero_only=True)
            pl_module.log("probe/online_loss", loss.detach(), rank_zero_only=True)
            self._correct = self._seen = 0

    def state_dict(self) -> dict[str, Any]:
        if self.head is None:
            return {}
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_state = state_dict or None
