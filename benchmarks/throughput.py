"""Training throughput (images/s) of diffrep's DPM and PDAE steps on this machine.

Usage: python benchmarks/throughput.py [--batch 64] [--steps 10]. Prints a table and writes
benchmarks/results/throughput.json. Uses the CPU demo U-Net of configs/dpm.yaml.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from diffrep.lightning_modules import DPM, PDAE
from diffrep.nets.unet import UNetConfig

CPU_UNET = UNetConfig(base_channels=16, channel_mult=[1, 2, 4], num_res_blocks=1, num_groups=8)


def time_steps(model, batch: torch.Tensor, steps: int) -> float:
    """Seconds per optimiser step (forward, backward, Adam, EMA), after one warm-up step."""
    optimizer = model.configure_optimizers()
    model.train()
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.ema.update()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    batch = torch.rand(args.batch, 1, 32, 32) * 2 - 1
    dpm = DPM(unet=CPU_UNET)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "dpm.ckpt"
        torch.save({"state_dict": dpm.state_dict(), "diffrep": dpm.checkpoint_metadata()}, ckpt)
        pdae = PDAE(str(ckpt), latent_dim=32)
    results = {}
    for name, model in (("dpm", dpm), ("pdae", pdae)):
        seconds = time_steps(model, batch, args.steps)
        results[name] = {"images_per_s": args.batch / seconds, "s_per_step": seconds, "batch": args.batch}
    print(f"{'method':8} {'images/s':>10} {'s/step':>8}  (batch {args.batch}, {torch.get_num_threads()} threads)")
    for name, r in results.items():
        print(f"{name:8} {r['images_per_s']:10.1f} {r['s_per_step']:8.3f}")
    out = Path(__file__).parent / "results" / "throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
