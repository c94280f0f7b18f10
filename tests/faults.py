"""Callbacks that a fault test puts into a ``diffrep fit`` config by class path: a signal sent to the
run's own process at a chosen point, and a record of every step's loss (tests/test_fault_matrix.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L

#: where in the run a signal lands
POINTS = ("train_step", "validation", "checkpoint_write")


class SignalAt(L.Callback):
    """Send ``signal_name`` (SIGTERM, SIGUSR1, SIGKILL) to this process once, at ``step``:
    after that training step (``train_step``), after the first validation batch that follows it
    (``validation``), or inside the first checkpoint save at or after it (``checkpoint_write``:
    the checkpoint is being assembled, the file not yet written). ``once_file`` marks that it was
    sent, so the resumed runs (same config) do not send it again."""

    def __init__(self, step: int, signal_name: str, point: str, once_file: str) -> None:
        if point not in POINTS:
            raise ValueError(f"point must be one of {POINTS}, got {point!r}")
        self.step, self.signum, self.point, self.once_file = step, getattr(signal, signal_name), point, Path(once_file)

    def _send(self) -> None:
        if not self.once_file.exists():
            self.once_file.write_text("sent")
            os.kill(os.getpid(), self.signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.point == "train_step" and trainer.global_step == self.step:
            self._send()

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.point == "validation" and trainer.global_step >= self.step and not trainer.sanity_checking:
            self._send()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self.point == "checkpoint_write" and trainer.global_step >= self.step:
            self._send()


class LossRecorder(L.Callback):
    """Append ``step loss.hex()`` for every finished training step to ``path`` (flushed at once,
    so a SIGKILL loses nothing that was recorded)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any) -> None:
        with self.path.open("a") as f:
            f.write(f"{trainer.global_step} {float(outputs['loss']).hex()}\n")


def read_losses(path: Path) -> dict[int, set[str]]:
    """{step: every loss recorded for it} (a step redone after a SIGKILL appears twice)."""
    losses: dict[int, set[str]] = {}
    for line in path.read_text().split("\n") if path.exists() else []:
        if line:
            step, value = line.split()
            losses.setdefault(int(step), set()).add(value)
    return losses


class PauseAt(L.Callback):
    """Sleep ``seconds`` after training step ``step``, having written ``marker`` first: holds a run
    in the middle of its fit while a test starts a second one into the same folder."""

    def __init__(self, step: int, seconds: float, marker: str) -> None:
        self.step, self.seconds, self.marker = step, seconds, Path(marker)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step == self.step:
            self.marker.write_text("paused")
            import time

            time.sleep(self.seconds)
