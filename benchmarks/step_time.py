"""Side by side in one process: the bf16 training step (batch 64, forward, backward, fused Adam, EMA)
of configs/drl.yaml's DRL, of it with the NCSN++ score net, and of it with the time-dependent WRN code,
the three whose time-to-accuracy curves share a step clock (benchmarks/time_to_accuracy.py).

``--against REV``: the Lightning training step (trainer.fit on batches of 64 random images, the config's
precision and clipping, no callbacks or logger) of each method's shipped config, in this checkout and in
git revision REV (its own code and its own configs, extracted to a temporary folder), alternating in one
run; a refactor's guard that it costs no speed (results/step_time_against.json).

Usage: python benchmarks/step_time.py [--steps 25] [--rounds 2]
       python benchmarks/step_time.py --against REV [--methods dpm pdae drl diffae] [--steps 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

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
    from diffrep.lightning_modules import DRL

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


# ------------------------------------------------------------- --against REV
def config_model(tree: Path, method: str) -> tuple[type, dict, dict]:
    """(class, init_args, trainer settings) of ``tree``'s configs/METHOD.yaml, as that tree defines them."""
    config = yaml.safe_load((tree / "configs" / f"{method}.yaml").read_text())
    module, _, name = config["model"]["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name), dict(config["model"]["init_args"]), config["trainer"]


def fit_steps(model: torch.nn.Module, trainer_settings: dict, steps: int, warmup: int = 5,
              save_to: str | None = None) -> list[float]:
    """Seconds of each training step after ``warmup`` steps of a plain trainer.fit on random images
    (then the model's checkpoint written to ``save_to``, where given)."""
    import lightning as L

    class StepClock(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_start(self, *args: object) -> None:
            self.times.append(time.perf_counter())

    shape = tuple(model.image_shape)
    images = torch.rand(64 * (steps + warmup + 1), *shape) * 2 - 1
    data = torch.utils.data.TensorDataset(images, torch.zeros(len(images), dtype=torch.long))
    clock = StepClock()
    trainer = L.Trainer(max_steps=steps + warmup + 1, precision=trainer_settings.get("precision", "32-true"),
                        gradient_clip_val=trainer_settings.get("gradient_clip_val"), logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[clock], accelerator="cpu", devices=1, limit_val_batches=0)
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=64, drop_last=True))
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    stamps = clock.times[warmup:]
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def worker(tree: Path, method: str, steps: int) -> None:
    """In a process whose diffrep is ``tree``'s: one method's step times, as JSON on stdout."""
    import diffrep

    os.chdir(tree)
    torch.manual_seed(0)
    cls, init_args, trainer_settings = config_model(tree, method)
    with tempfile.TemporaryDirectory() as folder:
        if "dpm_checkpoint" in init_args:  # PDAE adapts a DPM: this tree's own, trained one step
            dpm_cls, dpm_args, dpm_trainer = config_model(tree, "dpm")
            init_args["dpm_checkpoint"] = f"{folder}/dpm.ckpt"
            fit_steps(dpm_cls(**dpm_args), dpm_trainer, 1, warmup=0, save_to=init_args["dpm_checkpoint"])
        seconds = fit_steps(cls(**init_args), trainer_settings, steps)
    print(json.dumps({"diffrep": str(Path(diffrep.__file__).resolve().parent), "seconds": seconds}))


def measure(tree: Path, method: str, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), WANDB_MODE="disabled")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(tree), "--methods", method,
                          "--steps", str(steps)], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{method} in {tree} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["diffrep"]) != (tree / "diffrep").resolve():
        raise SystemExit(f"the worker imported diffrep from {result['diffrep']}, not {tree}")
    return result


def against(rev: str, methods: list[str], steps: int, rounds: int) -> dict:
    """Each method's median step in REV and in this checkout, alternating, round after round."""
    from official_speed import machine  # the CPU and its bf16 (benchmarks/ is the script's folder)

    def short(name: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", name], capture_output=True, text=True,
                              check=True).stdout.strip()

    head = short("HEAD")
    dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True).stdout.strip())
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        trees = {"before": before, "after": REPO}
        times: dict[str, dict[str, list[float]]] = {m: {"before": [], "after": []} for m in methods}
        for r in range(rounds):
            for method in methods:
                for side, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                    ms = 1000 * statistics.median(measure(tree, method, steps)["seconds"])
                    times[method][side].append(ms)
                    print(f"round {r}: {method} {side}: {ms:.1f} ms per step", flush=True)
    rows = {m: {"before_ms": statistics.median(t["before"]), "after_ms": statistics.median(t["after"]),
                "rounds_before_ms": t["before"], "rounds_after_ms": t["after"]} for m, t in times.items()}
    for row in rows.values():
        row["after_over_before"] = row["after_ms"] / row["before_ms"]
    return {"before": f"{short(rev)} ({rev})", "after": head + ("+uncommitted" if dirty else ""), "steps": steps,
            "rounds": rounds, "date": time.strftime("%Y-%m-%d"), "machine": machine(), "methods": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", metavar="REV", help="time each method's step here and in git revision REV")
    parser.add_argument("--methods", nargs="+", default=["dpm", "pdae", "drl", "diffae"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/step_time_against.json")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker.resolve(), args.methods[0], args.steps)
    if args.against:
        result = against(args.against, args.methods, args.steps, args.rounds)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        for method, row in result["methods"].items():
            print(f"{method}: {row['before_ms']:.1f} ms before, {row['after_ms']:.1f} ms after "
                  f"({row['after_over_before']:.2f}x)")
        return
    for r in range(args.rounds):
        for name, kwargs in variants().items():
            print(f"round {r}: {name}: {1000 * step_seconds(kwargs, args.steps):.1f} ms per step", flush=True)


if __name__ == "__main__":
    main()
