"""Keeping what a user trained: atomic checkpoints, a save on pre-emption, a final ``last.ckpt``,
non-finite guards.

``DiffrepCLI`` installs them on every run (a config can set its own ``NonFiniteGuard`` or
``PreemptionCheckpoint`` to change their options); a script can add them to its Trainer.
"""

from __future__ import annotations

import os
import signal
import tempfile
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from diffrep.checkpoints import CheckpointError
from diffrep.lightning_modules.api import NonFiniteLossError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the target folder, fsync, then rename over the target: a
    kill during the save leaves the previous checkpoint whole. Reading a broken file raises a
    ``CheckpointError`` that lists the other checkpoints beside it."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if get_filesystem(path).protocol not in ("file", ("file", "local")):  # remote stores: Lightning's way
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist; check --ckpt_path (`last` resumes the latest)")
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=False)
        except Exception as err:
            others = sorted(str(p) for p in path.parent.glob("*.ckpt") if p != path)
            hint = f"resume from another one: {', '.join(others)}" if others else "no other checkpoint is beside it"
            raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); {hint}") from err


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where this run's checkpoints go: the ModelCheckpoint's folder, else <root>/checkpoints."""
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    return Path(dirpath) if dirpath else Path(trainer.default_root_dir) / "checkpoints"


def last_checkpoint(trainer: L.Trainer) -> str:
    """The newest checkpoint on disk for messages ('none yet' if there is none)."""
    folder = checkpoint_dir(trainer)
    found = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return str(found[-1]) if found else "none yet"


class PreemptionCheckpoint(L.Callback):
    """On SIGTERM or SIGUSR1 (SLURM pre-emption), save ``last.ckpt`` at the end of the current
    step and stop cleanly; ``--ckpt_path last`` then resumes exactly there. Ctrl-C may land
    inside a step, so it saves ``interrupted.ckpt`` beside it instead, never over it.

    SIGTERM is Lightning's own flag (``trainer.received_sigterm``: it stops after the step and
    exits); SIGUSR1 is caught here unless Lightning's SLURM auto-requeue already handles it.
    Under DDP the ranks agree on the flag before saving, so all of them save together.
    """

    def __init__(self, filename: str = "last.ckpt") -> None:
        self.filename = filename
        self._signalled = False
        self._previous: Any = None
        self.saved_path: Path | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            self._previous = signal.signal(signal.SIGUSR1, self._on_signal)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signalled = True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        stop = self._signalled or trainer.received_sigterm
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop and self.saved_path is None:
            self.save(trainer, "a stop signal")
            trainer.should_stop = True

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Lightning stops a SIGTERM'd run by raising after the step (when the signal came too
        late in the step for ``on_train_batch_end``); Ctrl-C raises KeyboardInterrupt. Both
        leave a finished step behind, which is saved."""
        if self.saved_path is not None or not trainer.training:
            return
        if isinstance(exception, SIGTERMException):
            self.save(trainer, "SIGTERM")
        elif isinstance(exception, KeyboardInterrupt):  # may land mid-step: never overwrite last.ckpt
            self.save(trainer, "Ctrl-C", "interrupted.ckpt")

    def save(self, trainer: L.Trainer, reason: str, filename: str | None = None) -> None:
        self.saved_path = checkpoint_dir(trainer) / (filename or self.filename)
        trainer.save_checkpoint(self.saved_path)
        if trainer.is_global_zero:
            print(
                f"diffrep: {reason} at step {trainer.global_step}: saved {self.saved_path}; "
                "resume with --ckpt_path last (or that path)",
                flush=True,
            )


class FinalLastCheckpoint(L.Callback):
    """Brings this run's ``last.ckpt`` up to the final step when training ends.

    Lightning's ``ModelCheckpoint(save_last=True)`` (2.6) writes ``last.ckpt`` only beside a
    periodic checkpoint, and at the end of training only if it never wrote one: a run of 800 steps
    that checkpoints every 500 ends with a ``last.ckpt`` of step 500, and the last 300 steps are
    lost to every later stage that reads it. Where this run already wrote a ``last`` file and it
    is older than the final step, it is written again (the same file; a ``last.ckpt`` left by an
    earlier run is never touched). Not on an exception: a crash keeps the last whole checkpoint.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for callback in trainer.checkpoint_callbacks:
            if (
                isinstance(callback, ModelCheckpoint)
                and callback.save_last
                and callback.last_model_path  # none yet: ModelCheckpoint's own on_train_end writes it
                and callback._last_global_step_saved < trainer.global_step
            ):
                callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def refuse_a_folder_with_an_earlier_last_checkpoint(trainer: L.Trainer) -> None:
    """A fresh fit whose checkpoint folder already holds ``last.ckpt`` would write ``last-v1.ckpt``
    beside it (Lightning never overwrites), while every later stage that reads ``last.ckpt`` (PDAE's
    ``dpm_checkpoint``, ``--ckpt_path last``-free scripts) silently gets the earlier run. Stop with
    the two ways out instead; nothing on disk is touched."""
    for callback in trainer.checkpoint_callbacks:
        folder = callback.dirpath if isinstance(callback, ModelCheckpoint) else None
        if folder and callback.save_last and (Path(folder) / "last.ckpt").is_file():
            raise ValueError(
                f"{folder} already holds last.ckpt from an earlier run, which later stages would keep reading. "
                f"Resume it with --ckpt_path last, or move {folder} (or its run folder) away to train again"
            )


class NonFiniteGuard(L.Callback):
    """Checks the gradients before every optimiser step: a NaN/inf (from a non-finite loss or a
    blow-up in backward) either skips that step (up to ``max_skips`` in the whole run, counted
    in ``train/skipped_steps``) or stops the run with a message naming the step and the last
    good checkpoint. With fp16 precision the gradient scaler already skips such steps, so the
    guard stands aside."""

    def __init__(self, max_skips: int = 0) -> None:
        if max_skips < 0:
            raise ValueError(f"max_skips must be >= 0, got {max_skips}")
        self.max_skips = max_skips
        self.skipped = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module._nonfinite_guard = self  # the module's own loss check defers to the guard

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        if "16-mixed" in str(trainer.precision) and "bf16" not in str(trainer.precision):
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads or torch.stack([g.isfinite().all() for g in grads]).all():
            return
        step = trainer.global_step
        if self.skipped < self.max_skips:
            self.skipped += 1
            optimizer.zero_grad(set_to_none=True)  # Adam leaves parameters without grads untouched
            warnings.warn(
                f"non-finite gradient at step {step}: step skipped ({self.skipped}/{self.max_skips})", stacklevel=1
            )
            pl_module.log("train/skipped_steps", float(self.skipped))
            return
        limit = (
            f" after skipping {self.skipped} steps (NonFiniteGuard max_skips={self.max_skips})"
            if self.max_skips
            else ""
        )
        raise NonFiniteLossError(
            f"non-finite loss or gradient at step {step}{limit}. Last good checkpoint: {last_checkpoint(trainer)}. "
            "Lower the learning rate, set --trainer.gradient_clip_val 1.0, use precision 32, or allow skips with "
            "NonFiniteGuard(max_skips=N)"
        )

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.skipped = int(state_dict.get("skipped", 0))
