"""In-memory folder against streamed chunks at scale: start-up time and peak memory per rank.

Usage:
    python benchmarks/data_at_scale.py --work /tmp/scale              # 100k synthetic 64x64 JPEGs, 2 ranks
    python benchmarks/data_at_scale.py --work /tmp/scale --images 5000 --steps 10   # a quick look

Makes a synthetic folder (``--images`` 64x64 JPEGs in 10 class folders, smooth random colour
fields, made once), prepares it once with ``diffrep prepare`` (timed), then trains a small DPM
for ``--steps`` steps at batch 16 on ``--ranks`` CPU processes (DDP, gloo) twice: with
``ImageFolderDataModule`` (every rank decodes the whole folder) and with
``StreamingImageDataModule``. Each rank reports the seconds from its process start to its first
training step, the seconds its steps took and its peak resident memory (``ru_maxrss``), also
the memory it held before the data was set up (imports, the model). Prints a table and writes
benchmarks/results/data_at_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

START = time.time()
REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_folder(root: Path, n: int, size: int = 64) -> None:
    """``n`` JPEGs in 10 class folders: low-frequency random colour fields (so they compress like photos)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class_{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((size, size), Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)


def train(mode: str, data_root: Path, out: Path, steps: int, ranks: int) -> None:
    """One rank of one measurement (Lightning launches the others by re-running this script)."""
    import lightning as L
    import torch

    from diffrep import quiet
    from diffrep.datamodules import ImageFolderDataModule, StreamingImageDataModule
    from diffrep.lightning_modules import DPM
    from diffrep.nets.unet import UNetConfig

    class Measure(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if batch_idx == 0 and trainer.global_step == 0:
                self.first_step_s = time.time() - START
                self.steps_from = time.perf_counter()

        def on_train_end(self, trainer, pl_module) -> None:
            record = {"mode": mode, "rank": trainer.global_rank, "first_step_s": self.first_step_s,
                      "steps_s": time.perf_counter() - self.steps_from, "peak_rss_mb": peak_rss_mb(),
                      "before_data_mb": before_data_mb}
            (out / f"{mode}-rank{trainer.global_rank}.json").write_text(json.dumps(record))

    quiet.install()
    torch.set_num_threads(1)
    if mode == "memory":
        data = ImageFolderDataModule(root=str(data_root), channels=3, image_size=64, batch_size=16, val_size=1000,
                                     test_size=1000, max_in_memory_gb=1e9)
    else:
        data = StreamingImageDataModule(root=str(data_root), batch_size=16)
    unet = UNetConfig(in_channels=3, image_size=64, base_channels=16, channel_mult=[1, 2, 2], num_res_blocks=1,
                      attention_resolutions=[], num_groups=8)
    model = DPM(unet=unet, optimisation={"lr": 1e-4})
    before_data_mb = peak_rss_mb()
    trainer = L.Trainer(accelerator="cpu", devices=ranks, strategy="ddp" if ranks > 1 else "auto", max_steps=steps,
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Measure()])
    trainer.fit(model, datamodule=data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a folder for the images and the chunks")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--_rank_of", nargs=2, help=argparse.SUPPRESS)  # mode and data root, internal
    opts = parser.parse_args()
    if opts._rank_of:
        train(opts._rank_of[0], Path(opts._rank_of[1]), opts.work, opts.steps, opts.ranks)
        return

    folder, prepared = opts.work / f"folder{opts.images}", opts.work / f"prepared{opts.images}"
    timings: dict[str, float] = {}
    if not folder.is_dir():
        t = time.perf_counter()
        make_folder(folder, opts.images)
        timings["make_folder_s"] = time.perf_counter() - t
    if not prepared.is_dir():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "diffrep.cli", "prepare", str(folder), str(prepared), "--image_size",
                        "64", "--val_size", "1000", "--test_size", "1000"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        timings["prepare_s"] = time.perf_counter() - t
    records = []
    for mode, root in (("memory", folder), ("streaming", prepared)):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
        subprocess.run([sys.executable, __file__, "--work", str(opts.work), "--steps", str(opts.steps), "--ranks",
                        str(opts.ranks), "--_rank_of", mode, str(root)], check=True, env=env)
        records += [json.loads((opts.work / f"{mode}-rank{r}.json").read_text()) for r in range(opts.ranks)]
    print(f"\n{opts.images} images 64x64, {opts.ranks} ranks, {opts.steps} steps at batch 16 per rank")
    print("| data | rank | to first step (s) | steps (s) | memory before data (MB) | peak memory (MB) |")
    print("|---|---|---|---|---|---|")
    for r in records:
        print(f"| {r['mode']} | {r['rank']} | {r['first_step_s']:.1f} | {r['steps_s']:.1f} | "
              f"{r['before_data_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    print(" ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    result = {"images": opts.images, "ranks": opts.ranks, "steps": opts.steps, "records": records, **timings,
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d")}
    path = REPO / "benchmarks/results/data_at_scale.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
