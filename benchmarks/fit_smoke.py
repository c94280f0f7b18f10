"""A short Lightning fit of PDAE and DRL on the official-MNIST architecture with chosen trainer
options (precision, compile mode), on the offline digits data upscaled to 32x32: checks that a
GPU configuration trains end to end and reports its steady-state steps/s.

Usage: python benchmarks/fit_smoke.py [--accelerator gpu] [--precision bf16-mixed]
                                       [--compile reduce-overhead] [--steps 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from diffrep.datamodules import DigitsDataModule
from diffrep.lightning_modules import DPM, DRL, PDAE
from diffrep.nets.unet import UNetConfig

UNET = UNetConfig(base_channels=64, channel_mult=[1, 2, 2, 4], num_res_blocks=2, num_groups=32)


class StepTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter())
        self.losses.append(float(outputs["loss"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--compile", default="false")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    compile = {"false": False, "true": True}.get(args.compile, args.compile)
    L.seed_everything(0)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "dpm.ckpt"
        dpm = DPM(unet=UNET)
        torch.save({"state_dict": dpm.state_dict(), "diffrep": dpm.checkpoint_metadata()}, ckpt)
        models = {
            "pdae": PDAE(str(ckpt), latent_dim=512, fast={"compile": compile}),
            "drl": DRL(code={"latent_dim": 128}, fast={"compile": compile}, network=UNET),
        }
        for name, model in models.items():
            timer = StepTimer()
            trainer = L.Trainer(
                accelerator=args.accelerator,
                devices=1,
                precision=args.precision,
                max_steps=args.steps,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                limit_val_batches=0,
                callbacks=[timer],
                default_root_dir=tmp,
            )
            data = DigitsDataModule(image_size=32, batch_size=args.batch, val_size=0, num_workers=2)
            trainer.fit(model, datamodule=data)
            half = len(timer.times) // 2
            rate = (len(timer.times) - 1 - half) / (timer.times[-1] - timer.times[half])
            print(
                f"{name}: {rate * args.batch:.0f} img/s over the second half, loss {timer.losses[0]:.4f} -> "
                f"{sum(timer.losses[-10:]) / len(timer.losses[-10:]):.4f}, "
                f"finite: {all(map(lambda v: v == v, timer.losses))}"
            )


if __name__ == "__main__":
    main()
