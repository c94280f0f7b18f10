"""A tiny DPM fit on digits that a test can kill, signal or resume; used by tests/test_reliability.py.

python tests/scripts/fault_fit.py OUT_DIR MAX_STEPS [--kill-at N | --sigterm-at N] [--resume]
Checkpoints every 5 steps (atomic), writes OUT_DIR/final.pt (weights, step) when training ends.
"""

import argparse
import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import digits, tiny_unet_config  # noqa: E402

from diffrep.diffusion.schedule import ScheduleConfig  # noqa: E402
from diffrep.lightning_modules import DPM  # noqa: E402
from diffrep.reliability import AtomicCheckpointIO, NonFiniteGuard, PreemptionCheckpoint  # noqa: E402


class SignalAt(L.Callback):
    """Send ``signum`` to this process when step ``step`` has finished (mid-epoch)."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("max_steps", type=int)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--sigterm-at", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0, workers=True)
    model = DPM(unet=tiny_unet_config(), schedule=ScheduleConfig(num_timesteps=1000), optimisation={"lr": 2e-3},
                ema={"decay": 0.9})
    callbacks = [ModelCheckpoint(dirpath=args.out / "checkpoints", save_last=True, every_n_train_steps=5, save_top_k=0),
                 NonFiniteGuard(), PreemptionCheckpoint()]
    if args.kill_at:
        callbacks.append(SignalAt(args.kill_at, signal.SIGKILL))
    if args.sigterm_at:
        callbacks.append(SignalAt(args.sigterm_at, signal.SIGTERM))
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=args.max_steps, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=callbacks,
        default_root_dir=str(args.out), plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(model, datamodule=digits(batch_size=32), ckpt_path="last" if args.resume else None)
    if trainer.global_step == args.max_steps:
        torch.save({"state_dict": model.state_dict(), "step": trainer.global_step}, args.out / "final.pt")


if __name__ == "__main__":
    main()
