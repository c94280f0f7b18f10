"""One "node" of a simulated 2-node x 1-process DDP run on localhost (gloo), streaming a prepared
data set: the environment variables are the ones a cluster launcher (SLURM's srun, torchrun)
sets on each node, read by Lightning's cluster environment. Each rank writes the images it
trained on and its final weights; rank 0 a checkpoint at step 8 of the 9 (ckpts/step8.ckpt).

Run by tests/test_multinode.py, once per node:
    NODE_RANK=i LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=P \
        python tests/scripts/multinode_fit.py OUT_DIR PREPARED_DIR
"""

import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import tiny_unet_config  # noqa: E402

from diffrep.datamodules import StreamingImageDataModule  # noqa: E402
from diffrep.lightning_modules import DPM  # noqa: E402


class SeenImages(L.Callback):
    """The training images of this rank, in order, and its weights at the end."""

    def __init__(self, out: Path) -> None:
        self.out, self.images = out, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.images.append(batch[0].clone())

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save({"images": torch.cat(self.images), "state_dict": pl_module.state_dict(),
                    "world_size": trainer.world_size, "num_nodes": trainer.num_nodes},
                   self.out / f"rank{trainer.global_rank}.pt")


def main(out: Path, prepared: Path) -> None:
    L.seed_everything(0)
    model = DPM(unet=tiny_unet_config(), optimisation={"lr": 2e-3}, ema={"decay": 0.9})
    trainer = L.Trainer(
        accelerator="cpu", num_nodes=2, devices=1, strategy="ddp", max_steps=9, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, logger=False, default_root_dir=str(out),
        callbacks=[SeenImages(out), ModelCheckpoint(dirpath=out / "ckpts", filename="step8", every_n_train_steps=8)],
    )
    trainer.fit(model, datamodule=StreamingImageDataModule(root=str(prepared), batch_size=16))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
