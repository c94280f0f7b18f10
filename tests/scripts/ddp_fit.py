"""A 2-process CPU DDP fit of a tiny PDAE; each rank writes its weights, losses and RNG state,
and rank 0 a checkpoint at step 8 (ckpts/last.ckpt).

Run by tests/test_ddp.py as: python tests/scripts/ddp_fit.py OUT_DIR (Lightning launches rank 1).
"""

import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import digits, tiny_unet_config  # noqa: E402

from diffrep.lightning_modules import DPM, PDAE  # noqa: E402


class RankRecorder(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.losses = out, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save(
            {"state_dict": pl_module.state_dict(), "losses": self.losses, "rng": torch.get_rng_state()},
            self.out / f"rank{trainer.global_rank}.pt",
        )


def main(out: Path) -> None:
    L.seed_everything(0)
    ckpt = out / "dpm.ckpt"
    if not ckpt.exists():  # written once, before the launch of rank 1 (which re-runs this script)
        dpm = DPM(unet=tiny_unet_config())
        torch.save({"state_dict": dpm.state_dict(), "diffrep": dpm.checkpoint_metadata()}, ckpt)
    model = PDAE(
        str(ckpt),
        latent_dim=8,
        optimisation={"lr": 1e-3},
        ema={"decay": 0.9},
        encoder={"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1},
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=8,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=str(out),
        logger=L.pytorch.loggers.CSVLogger(str(out), name="logs"),
        callbacks=[RankRecorder(out), ModelCheckpoint(dirpath=out / "ckpts", save_last=True, every_n_train_steps=8)],
    )
    trainer.fit(model, datamodule=digits(batch_size=16))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
