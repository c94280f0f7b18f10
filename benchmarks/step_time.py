"""Side by side in one process: the bf16 training step (batch 64, forward, backward, fused Adam, EMA)
of configs/drl.yaml's DRL, of it with the NCSN++ score net, and of it with the time-dependent WRN code,
the three whose time-to-accuracy curves share a step clock (benchmarks/time_to_accuracy.py).

Usage: python benchmarks/step_time.py [--steps 25] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from diffrep.lightning_modules import DRL

REPO = Path(__file__).resolve().parents[1]


def variants() -> dict[str, dict]:
    base = yaml.safe_load((REPO / "configs/drl.yaml").read_text())["model"]["init_args"]
    return {
        "U-Net (configs/drl.yaml)": base,
        "NCSN++ score net": dict(base, network=dict(
            kind="ncsnpp", in_channels=1, image_size=32, base_channels=16, channel_mult=[1, 2, 2], num_res_blocks=1,
            attention_resolutions=[], dropout=0.0)),
        "time-dependent WRN code": dict(base, encoder={"kind": "wrn", "depth": 10, "widen_factor": 1},
                                        code={"latent_dim": 64, "time_dependent": True},
                                        network={**base["network"], "z_mode": "ncsnpp"}),
    }


def step_seconds(args: dict, steps: int) -> float:
    torch.manual_seed(0)
    model = DRL(**args)
    optimizer = torch.optim.Adam(model.parameters(), 5e-4, fused=True)
    x = torch.rand(64, 1, 32, 32) * 2 - 1

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16):
            loss = model.loss(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.ema.update()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for r in range(args.rounds):
        for name, kwargs in variants().items():
            print(f"round {r}: {name}: {1000 * step_seconds(kwargs, args.steps):.1f} ms per step", flush=True)


if __name__ == "__main__":
    main()
