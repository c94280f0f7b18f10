"""Keeping what a user trained: atomic checkpoints, a save on pre-emption, a final ``last.ckpt``,
non-finite guards.

``DiffrepCLI`` installs them on every run (a config can set its own ``NonFiniteGuard`` or
``PreemptionCheckpoint`` to change their options); a script can add them to its Trainer.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import Tensor

from diffrep.checkpoints import CheckpointError, load_checkpoint_file
from diffrep.errors import ConfigError
from diffrep.internals import hpc_resume_path, skips_on_found_inf
from diffrep.lightning_modules.api import NonFiniteLossError, uses_gradient_scaler


def tensor_bytes(obj: Any) -> int:
    """The bytes of every tensor in a (nested) checkpoint: about what ``torch.save`` writes."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def refuse_without_room(folder: Path, needed: int, what: str) -> None:
    """One line (a ``CheckpointError``) when ``folder``'s file system has less free space than
    ``needed`` bytes plus a 5% margin."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed * 1.05:
        raise CheckpointError(f"{folder} has {megabytes(free)} free, and {what} needs about {megabytes(needed)}; "
                              "free space there (or set another --trainer.default_root_dir), then start again")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the target folder, fsync, then rename over the target: a
    kill during the save leaves the previous checkpoint whole. Reading is ``weights_only``
    (``load_checkpoint_file``: nothing in a checkpoint runs code unless the user trusts it); a
    broken file raises a ``CheckpointError`` that lists the other checkpoints beside it. A full disk
    is one line naming the folder and the bytes needed (the temporary file removed, the previous
    checkpoint untouched)."""

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
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                kept = f"; {path} is untouched" if path.exists() else ""
                raise CheckpointError(f"no space left in {path.parent} for {path.name} (about "
                                      f"{megabytes(tensor_bytes(checkpoint))}){kept}. Free space there, then resume "
                                      "with --ckpt_path last") from None
            raise

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist; check --ckpt_path (`last` resumes the latest)")
        try:
            return load_checkpoint_file(path, map_location=map_location)
        except CheckpointError:
            raise
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
    """On SIGTERM, SIGUSR1 (SLURM pre-emption) or Ctrl-C (SIGINT), save ``last.ckpt`` at the end of
    the current step and stop cleanly; ``--ckpt_path last`` then resumes exactly there. A second
    Ctrl-C stops at once: it may land inside a step, so that save is ``interrupted.ckpt`` beside
    ``last.ckpt``, never over it.

    SIGTERM is Lightning's own flag (``trainer.received_sigterm``: it stops after the step and
    exits); SIGUSR1 is caught here unless Lightning's SLURM auto-requeue already handles it.
    Under DDP the ranks agree on the flag before saving, so all of them save together.
    """

    def __init__(self, filename: str = "last.ckpt") -> None:
        self.filename = filename
        self._signalled = False
        self._sigterm = False
        self._interrupted = False
        self._previous: Any = None
        self._previous_int: Any = None
        self.saved_path: Path | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            self._previous = signal.signal(signal.SIGUSR1, self._on_signal)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Python's own: KeyboardInterrupt
            self._previous_int = signal.signal(signal.SIGINT, self._on_interrupt)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.restore_handlers()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.restore_handlers()  # also after an exception, where on_train_end does not run

    def restore_handlers(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None
        if self._previous_int is not None:
            signal.signal(signal.SIGINT, self._previous_int)
            self._previous_int = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signalled = True

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        """The first Ctrl-C finishes the step and saves ``last.ckpt``; the second stops at once."""
        if self._interrupted:
            self.restore_handlers()
            raise KeyboardInterrupt
        self._interrupted = True
        print("diffrep: Ctrl-C: finishing this step, then saving last.ckpt (Ctrl-C again stops at once)",
              file=sys.stderr, flush=True)

    @property
    def exit_code(self) -> int | None:
        """128 + the signal's number (143 SIGTERM, 138 SIGUSR1) after a stop signal, as a shell
        reports a signalled process, so a chain (``make demo``) never starts the next stage on a
        stage that did not finish; None when no signal stopped the run."""
        if self._signalled:
            return 128 + int(signal.SIGUSR1)
        if self._interrupted:
            return 128 + int(signal.SIGINT)
        if self._sigterm:
            return 128 + int(signal.SIGTERM)
        return None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._sigterm = self._sigterm or bool(trainer.received_sigterm)
        stop = self._signalled or trainer.received_sigterm or self._interrupted
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop and self.saved_path is None:
            self.save(trainer, "Ctrl-C" if self._interrupted else "a stop signal")
            trainer.should_stop = True

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Lightning stops a SIGTERM'd run by raising after the step (when the signal came too
        late in the step for ``on_train_batch_end``); Ctrl-C raises KeyboardInterrupt. Both
        leave a finished step behind, which is saved."""
        if self.saved_path is not None or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return  # a SIGTERM during validation inside fit still saves: Lightning resumes mid-validation
        if isinstance(exception, SIGTERMException):
            self._sigterm = True
            self.save(trainer, "SIGTERM")
        elif isinstance(exception, KeyboardInterrupt):  # may land mid-step: never overwrite last.ckpt
            self.save(trainer, "Ctrl-C", "interrupted.ckpt")

    def save(self, trainer: L.Trainer, reason: str, filename: str | None = None) -> None:
        """Write ``last.ckpt`` through the run's ``ModelCheckpoint`` where it keeps one, so the file
        is recorded as this run's own (its ``last_model_path`` is in the saved state) and a resumed
        run goes on writing it instead of versioning a ``last-v1.ckpt`` beside it."""
        keeper = None if filename else last_keeper(trainer)
        if keeper is not None and self.filename == "last.ckpt":
            keeper._save_last_checkpoint(trainer, keeper._monitor_candidates(trainer))
            self.saved_path = Path(keeper.last_model_path)
        else:
            self.saved_path = checkpoint_dir(trainer) / (filename or self.filename)
            trainer.save_checkpoint(self.saved_path)
        if trainer.is_global_zero:
            hint = ("resume with --ckpt_path last (or that path)" if filename is None else
                    f"it may hold half a step: resume with --ckpt_path {self.saved_path}, or from last.ckpt if any")
            print(f"diffrep: {reason} at step {trainer.global_step}: saved {self.saved_path}; {hint}", flush=True)


def last_keeper(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The run's ``ModelCheckpoint`` that keeps ``last.ckpt`` (``save_last``), if any."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            return callback
    return None


def own_last_path(callback: ModelCheckpoint) -> Path:
    """``<dirpath>/last.ckpt``: the one file later stages read (PDAE's ``dpm_checkpoint`` etc.)."""
    return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"


class FinalLastCheckpoint(L.Callback):
    """One live ``last.ckpt`` per run folder, at the final step.

    - A run resumed from a ``last*.ckpt`` of its own folder keeps writing ``last.ckpt``, whoever
      saved the file it resumed from (ModelCheckpoint, the stop-signal handler, this callback).
      Lightning only recognises the file named in the restored ``last_model_path``; a checkpoint
      whose state lacks it (one a stop signal wrote before any periodic save) would otherwise make
      the resumed run write ``last-v1.ckpt`` while every later stage kept reading the stale
      ``last.ckpt``. A ``last-vN.ckpt`` resumed from (left by such an older run) is removed once
      ``last.ckpt`` holds a later step.
    - A run that resumes from elsewhere into a folder holding another run's ``last.ckpt`` still gets
      Lightning's ``last-v1.ckpt`` (the other file is not this run's to overwrite), and one line says so.
    - Lightning's ``ModelCheckpoint(save_last=True)`` (2.6) writes ``last.ckpt`` only beside a
      periodic checkpoint, and at the end of training only if it never wrote one: a run of 800 steps
      that checkpoints every 500 would end with a ``last.ckpt`` of step 500. Here it is written at
      the final step, from inside that step (``on_train_batch_end``), so a resume with a larger
      ``max_steps`` continues bit for bit; a run that ends otherwise gets it at ``on_train_end``.
      Not on an exception: a crash keeps the last whole checkpoint.
    """

    def __init__(self) -> None:
        self._superseded: list[Path] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        callback = last_keeper(trainer)
        if callback is None:
            return
        own = own_last_path(callback)
        resumed = Path(trainer.ckpt_path).resolve() if trainer.ckpt_path else None
        if resumed is not None and resumed.parent == own.parent.resolve() and resumed.name.startswith(own.stem):
            callback.last_model_path = str(own)
            if resumed != own.resolve():
                self._superseded.append(resumed)
        elif own.is_file() and Path(callback.last_model_path or "").resolve() != own.resolve():
            warnings.warn(
                f"{own} belongs to another run (this one resumes from {trainer.ckpt_path or 'no checkpoint'}), so "
                f"this run's last checkpoint goes to a versioned last-vN.ckpt beside it; later stages that read "
                f"{own.name} get the other run", stacklevel=1)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        """At ``max_steps``, write ``last.ckpt`` from inside the step, as a periodic save would: Lightning
        marks the epoch finished before ``on_train_end``, so a checkpoint written there would make a run
        resumed with a larger ``max_steps`` start a new epoch (another data order) instead of going on."""
        callback = last_keeper(trainer)
        final = 0 < trainer.max_steps <= trainer.global_step
        if callback is None or not final or callback._last_global_step_saved >= trainer.global_step:
            return
        every = callback._every_n_train_steps
        if every and trainer.global_step % every == 0:
            return  # the ModelCheckpoint saves this step itself (with its periodic file)
        callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        callback = last_keeper(trainer)
        if callback is None:
            return
        if callback.last_model_path and callback._last_global_step_saved < trainer.global_step:
            callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))
        own = own_last_path(callback)
        if Path(callback.last_model_path or "").resolve() == own.resolve() and own.is_file():
            for stale in self._superseded:
                if trainer.is_global_zero and stale.is_file():
                    stale.unlink()
                    print(f"diffrep: removed {stale}: {own} now holds this run at step {trainer.global_step}",
                          flush=True)
            self._superseded = []


def slurm_requeue(trainer: L.Trainer) -> bool:
    """A SLURM requeue: Lightning resumes from its hpc_ckpt_N.ckpt (docs/reliability.md), whatever
    the folder's ``last.ckpt`` and ``--ckpt_path`` say."""
    return SLURMEnvironment.detect() and hpc_resume_path(trainer) is not None


def refuse_a_folder_with_an_earlier_last_checkpoint(trainer: L.Trainer) -> None:
    """A fresh fit whose checkpoint folder already holds ``last.ckpt`` would write ``last-v1.ckpt``
    beside it (Lightning never overwrites), while every later stage that reads ``last.ckpt`` (PDAE's
    ``dpm_checkpoint``, ``--ckpt_path last``-free scripts) silently gets the earlier run. Stop with
    the two ways out instead; nothing on disk is touched."""
    if slurm_requeue(trainer):
        return
    callback = last_keeper(trainer)
    if callback is not None and own_last_path(callback).is_file():
        folder = callback.dirpath
        raise ConfigError(
            f"{folder} already holds last.ckpt from an earlier run, which later stages would keep reading. "
            f"Resume it with --ckpt_path last, or move {folder} (or its run folder) away to train again"
        )


def refuse_last_with_nothing_to_resume(trainer: L.Trainer) -> None:
    """``--ckpt_path last`` in a folder with no ``last*.ckpt``: Lightning would warn among its start-up
    lines and train from step 0, and the fresh last.ckpt would later pass for the one the user meant
    to resume. Stop with one line instead."""
    if slurm_requeue(trainer):
        return
    folder = checkpoint_dir(trainer)
    if not (folder.is_dir() and any(folder.glob("last*.ckpt"))):
        others = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else []
        hint = f"; it holds {', '.join(others)}: pass one as --ckpt_path PATH" if others else ""
        raise ConfigError(f"--ckpt_path last: {folder} has no last.ckpt to resume{hint}. Leave --ckpt_path out "
                          "to start a new run there")


class DiskSpaceCheck(L.Callback):
    """Before the first step, whether the checkpoint folder has room for a checkpoint (the weights and
    buffers, EMA included, plus two optimiser moments per trainable weight, as Adam keeps): a long
    run should not find out at its first save."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or last_keeper(trainer) is None:
            return
        trainable = sum(p.numel() * p.element_size() for p in pl_module.parameters() if p.requires_grad)
        refuse_without_room(checkpoint_dir(trainer), tensor_bytes(pl_module.state_dict()) + 2 * trainable,
                            "a checkpoint of this model")


#: the file that marks a run folder as taken by a running ``diffrep fit``
LOCK_NAME = ".diffrep.lock"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class RunFolderLock:
    """``<run folder>/.diffrep.lock``, taken atomically (O_EXCL) by a ``diffrep fit`` and removed on
    its way out, so a second fit into the same folder is refused while the first runs (the two would
    write the same checkpoints, images and metrics). The file holds the holder's pid, host, SLURM
    job and start time. A lock whose process is gone (same host), or of the same SLURM job (a
    requeue), is stale and taken over; one of a live process or another host is not."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.mine = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID"),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.held = False

    def acquire(self) -> str | None:
        """Take the lock; returns a note when a stale lock was taken over. Raises ``ConfigError``. The
        file is written whole beside the lock and hard-linked into place (atomic, and fails if a lock
        exists), so no other process ever reads a lock half written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}")
        mine.write_text(json.dumps(self.mine))
        try:
            try:
                os.link(mine, self.path)
                self.held = True
                return None
            except FileExistsError:
                holder = self.holder()
            if not self.stale(holder):
                raise ConfigError(
                    f"{self.path.parent} is in use by another diffrep fit (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, since {holder.get('started')}); wait for it to end or give this run "
                    f"another --trainer.default_root_dir (if no run uses it, delete {self.path})")
            os.replace(mine, self.path)
            if self.holder().get("pid") != os.getpid():  # another process took it over at the same moment
                raise ConfigError(f"{self.path.parent} was just taken by another diffrep fit")
            self.held = True
            return f"took over the stale lock of pid {holder.get('pid')} ({self.path})"
        finally:
            mine.unlink(missing_ok=True)

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def stale(self, holder: dict[str, Any]) -> bool:
        if not holder or holder.get("pid") == os.getpid():
            return True  # unreadable (not a lock this code wrote), or this very process
        job = os.environ.get("SLURM_JOB_ID")
        if job and holder.get("slurm_job") == job:
            return True  # a requeued job: its previous run was killed
        return holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", -1)))

    def release(self) -> None:
        if self.held and self.holder().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def is_first_process_of_run() -> bool:
    """False in the other ranks of a DDP run (launched ranks carry LOCAL_RANK/NODE_RANK/SLURM_PROCID):
    they share the lock rank 0 took."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


class NonFiniteGuard(L.Callback):
    """A NaN/inf gradient (from a non-finite loss or a blow-up in backward) either skips that
    optimiser step (up to ``max_skips`` in the whole run, counted in ``train/skipped_steps``) or
    stops the run with a message naming the step and the last good checkpoint.

    Without a host sync on the fast path: the check is a device tensor handed to the optimiser
    as ``found_inf`` (fused Adam/AdamW, which diffrep's methods use, then skip the whole update on
    the device, as under a gradient scaler), and the count of skipped steps with their step
    numbers stays on the device. It is read every ``check_every`` steps, before every checkpoint
    and at the end of training, so a skip is reported (and a run past ``max_skips`` stopped) at
    the next read, never later than the next checkpoint; a skipped step changed no weight. An
    optimiser without ``found_inf`` support is checked the old way, with a sync every step. With
    fp16 precision the gradient scaler already skips such steps, so the guard stands aside."""

    def __init__(self, max_skips: int = 0, check_every: int = 50) -> None:
        if max_skips < 0:
            raise ConfigError(f"max_skips must be >= 0, got {max_skips}")
        if check_every < 1:
            raise ConfigError(f"check_every must be >= 1, got {check_every}")
        self.max_skips, self.check_every = max_skips, check_every
        self.skipped = 0  # skips already reported (read back from the device)
        self._count: Tensor | None = None  # skips so far, on the device
        self._steps: Tensor | None = None  # their step numbers (the first max_skips + 1), on the device

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module._nonfinite_guard = self  # the module's own loss check defers to the guard

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        if uses_gradient_scaler(trainer.precision):
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        bad = ~torch.stack([g.isfinite().all() for g in grads]).all()
        if not skips_on_found_inf(optimizer):
            if bad:  # a host sync: this optimiser cannot skip a step on the device
                self._record(bad, trainer.global_step)
                optimizer.zero_grad(set_to_none=True)  # Adam leaves parameters without grads untouched
                self.check(trainer, pl_module, log=True)
            return
        optimizer.found_inf = bad.float()  # fused Adam skips the update (and its step count) on the device
        self._record(bad, trainer.global_step)

    def _record(self, bad: Tensor, step: int) -> None:
        if self._count is None:
            self._count = torch.zeros((), dtype=torch.long)
            self._steps = torch.full((self.max_skips + 1,), -1, dtype=torch.long)
        if self._count.device != bad.device:  # first use, or restored from a checkpoint on the CPU
            self._count, self._steps = self._count.to(bad.device), self._steps.to(bad.device)
        slot = self._count.clamp(max=self.max_skips).view(1)  # tensor indexing: no read-back
        held = self._steps.index_select(0, slot)  # the last slot keeps the first step past the limit
        self._steps.index_put_((slot,), torch.where(bad & (held < 0), step, held))
        self._count += bad.long()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step % self.check_every == 0:
            self.check(trainer, pl_module, log=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self.check(trainer, pl_module)  # a run past its skips stops before this checkpoint is written

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer, pl_module)
        for optimizer in trainer.optimizers:
            if hasattr(optimizer, "found_inf"):
                del optimizer.found_inf

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule, log: bool = False) -> None:
        """Read the device count (a sync); warn about new skips, stop past ``max_skips``; ``log``
        where Lightning allows logging (inside a training step's hooks)."""
        if self._count is None:
            return
        count = int(self._count)
        if count <= self.skipped:
            return
        steps = [int(s) for s in self._steps.tolist() if s >= 0]
        for number in range(self.skipped + 1, min(count, self.max_skips) + 1):
            warnings.warn(f"non-finite gradient at step {steps[number - 1]}: step skipped "
                          f"({number}/{self.max_skips})", stacklevel=1)
        if count > self.max_skips:
            step = steps[self.max_skips]
            limit = (
                f" after skipping {self.max_skips} steps (NonFiniteGuard max_skips={self.max_skips})"
                if self.max_skips
                else ""
            )
            self.skipped = count
            raise NonFiniteLossError(
                f"non-finite loss or gradient at step {step}{limit}; that step changed no weight. Last good "
                f"checkpoint: {last_checkpoint(trainer)}. Lower the learning rate, set "
                "--trainer.gradient_clip_val 1.0, use precision 32, or allow skips with NonFiniteGuard(max_skips=N)"
            )
        self.skipped = count
        if log:
            pl_module.log("train/skipped_steps", float(count))

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.skipped = int(state_dict.get("skipped", 0))
        self._count = torch.tensor(self.skipped)
        self._steps = torch.full((self.max_skips + 1,), -1, dtype=torch.long)
        self._steps[: min(self.skipped, self.max_skips + 1)] = 0  # earlier skips: their steps were reported
