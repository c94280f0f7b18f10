"""The demo's training budget, chosen on the validation split.

Usage: python benchmarks/demo_selection.py [--out runs/demo_selection] [--dpm-steps 1000 1500]
                                           [--pdae-lrs 3e-4 6e-4] [--pdae-steps 600 800 1000]

`make demo` trains configs/dpm.yaml (1000 steps) then configs/pdae.yaml (lr 3e-4, 800 steps). Those
budgets were first picked from fit-end probes that scored the *test* split; this command picks them
again with the same two criteria on validation images only (the 5000 held out of Fashion-MNIST's
training set, `data.val_size`):

1. the DPM: configs/dpm.yaml trained to the longest of ``--dpm-steps``, a checkpoint at each; its own
   DDIM inversion and decoding (50 steps, fp32) of the first 128 validation images; lower MSE wins
   (a shorter DPM that inverts as well is the cheaper start for PDAE);
2. PDAE on the DPM of step 1: configs/pdae.yaml at each of ``--pdae-lrs``, a checkpoint at each of
   ``--pdae-steps``; the demo's linear probe (10000 training codes, 5000 validation codes); the
   highest accuracy wins, and among budgets within 0.3 points of it the fewest steps (the demo must
   stay near a quarter hour).

``chosen_pdae`` is what validation picks with no limit on time; the demo trains the largest budget
that keeps `make demo` near a quarter hour (docs/results.md, "The demo", says which and why).

Every fit resumes from its last.ckpt and every scored checkpoint is kept in the JSON, so an
interrupted run continues where it stopped. Writes benchmarks/results/demo_selection.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from claims import load_step

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks/results/demo_selection.json"
TIE = 0.003  # probe accuracies within this of the best count as equal (the probe's spread over reruns)
CHECKPOINTS = """trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {dirpath}, filename: "step{{step:07d}}", auto_insert_metric_name: false,
                  save_last: true, save_top_k: -1, every_n_train_steps: {every}}}
"""


def fit(config: str, run: Path, steps: int, every: int, extra: list[str]) -> None:
    """``diffrep fit`` of ``config`` to ``steps`` with a checkpoint every ``every`` steps and no
    evaluation callbacks (resumed from last.ckpt if one is there)."""
    from diffrep.cli import main as diffrep

    last = run / "checkpoints/last.ckpt"
    if last.is_file() and load_step(last) >= steps:
        return
    run.mkdir(parents=True, exist_ok=True)
    overrides = run / "checkpoints.yaml"
    overrides.write_text(CHECKPOINTS.format(dirpath=run / "checkpoints", every=every))
    diffrep(["fit", "--config", str(REPO / config), "--config", str(overrides), "--trainer.max_steps", str(steps),
             "--trainer.default_root_dir", str(run), "--trainer.logger", "false",
             "--trainer.enable_progress_bar", "false", *extra, *(["--ckpt_path", "last"] if last.is_file() else [])])


def at_step(run: Path, step: int) -> Path:
    path = run / f"checkpoints/step{step:07d}.ckpt"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: the fit did not save step {step}")
    return path


def validation_data(image_size: int):
    from diffrep.datamodules import FashionMNISTDataModule

    data = FashionMNISTDataModule(image_size=image_size, val_size=5000)
    data.setup()
    return data


def dpm_inversion_mse(checkpoint: Path, images: int = 128, steps: int = 50) -> float:
    """MSE (pixels in [0, 1]) of the DPM's own DDIM inversion and decoding of validation images."""
    from diffrep.diffusion.sampling import ddim_invert, ddim_sample
    from diffrep.evaluation.reconstruction import image_errors
    from diffrep.lightning_modules.loading import load_trained

    torch.manual_seed(0)
    model = load_trained(checkpoint, ["DPM"], "a DPM checkpoint")
    val = validation_data(model.image_shape[-1]).evaluation_split("val")
    x0 = torch.stack([val[i][0] for i in range(images)])
    with torch.no_grad():
        eps = model.code_eps_fn(None)
        x_T = ddim_invert(eps, model.schedule, x0, steps)
        decoded = ddim_sample(eps, model.schedule, x_T, steps)
    return image_errors(decoded.float(), x0)["mse"].mean().item()


def pdae_validation_probe(checkpoint: Path) -> float:
    """The demo's linear probe (10000 training codes, 5000 validation codes) of a PDAE checkpoint."""
    from diffrep.evaluation.features import encode_split
    from diffrep.evaluation.probes import linear_probe
    from diffrep.lightning_modules.loading import load_pdae

    model = load_pdae(checkpoint)
    data = validation_data(model.image_shape[-1])
    train = encode_split(model, data.evaluation_split("train"), 10000)
    val = encode_split(model, data.evaluation_split("val"), 5000)
    return linear_probe(*train, *val)["accuracy"]


def choose_pdae(scores: dict[str, dict[str, float]]) -> dict:
    """The best validation probe; among budgets within ``TIE`` of it, the fewest steps (then the lower lr)."""
    rows = [(float(lr), int(step), acc) for lr, per_step in scores.items() for step, acc in per_step.items()]
    best = max(acc for _, _, acc in rows)
    lr, step, acc = min((r for r in rows if r[2] >= best - TIE), key=lambda r: (r[1], r[0]))
    return {"lr": lr, "steps": step, "val_linear_accuracy": acc, "best_val_linear_accuracy": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs/demo_selection")
    parser.add_argument("--dpm-steps", type=int, nargs="+", default=[1000, 1500])
    parser.add_argument("--pdae-lrs", type=float, nargs="+", default=[3e-4, 6e-4])
    parser.add_argument("--pdae-steps", type=int, nargs="+", default=[600, 800, 1000])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    out = args.out.resolve()
    record = json.loads(args.results.read_text()) if args.results.is_file() else {}
    settings = {"dpm_steps": args.dpm_steps, "pdae_lrs": args.pdae_lrs, "pdae_steps": args.pdae_steps,
                "split": "val (5000 held out of the training set, seed 0)"}
    if record.get("settings") != settings:
        record = {"settings": settings, "dpm_val_inversion_mse": {}, "pdae_val_linear_accuracy": {}}

    def save() -> None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(record, indent=1))

    start = time.perf_counter()
    every = _common_step(args.dpm_steps)
    fit("configs/dpm.yaml", out / "dpm", max(args.dpm_steps), every, [])
    for step in args.dpm_steps:
        if str(step) not in record["dpm_val_inversion_mse"]:
            record["dpm_val_inversion_mse"][str(step)] = dpm_inversion_mse(at_step(out / "dpm", step))
            save()
    dpm_step = min(args.dpm_steps, key=lambda s: (record["dpm_val_inversion_mse"][str(s)], s))
    record["chosen_dpm_steps"] = dpm_step
    dpm = at_step(out / "dpm", dpm_step)
    for lr in args.pdae_lrs:
        run = out / f"pdae_dpm{dpm_step}_lr{lr:g}"
        fit("configs/pdae.yaml", run, max(args.pdae_steps), _common_step(args.pdae_steps),
            ["--model.init_args.dpm_checkpoint", str(dpm), "--model.init_args.optimisation.lr", str(lr)])
        scores = record["pdae_val_linear_accuracy"].setdefault(f"{lr:g}", {})
        for step in args.pdae_steps:
            if str(step) not in scores:
                scores[str(step)] = pdae_validation_probe(at_step(run, step))
                save()
    record["chosen_pdae"] = choose_pdae(record["pdae_val_linear_accuracy"])
    record["minutes_this_call"] = round((time.perf_counter() - start) / 60, 1)
    save()
    print(json.dumps({k: record[k] for k in ("dpm_val_inversion_mse", "pdae_val_linear_accuracy", "chosen_dpm_steps",
                                             "chosen_pdae")}, indent=1))


def _common_step(steps: list[int]) -> int:
    """The checkpoint interval that lands on every step asked for (their greatest common divisor)."""
    from functools import reduce
    from math import gcd

    return reduce(gcd, steps)


if __name__ == "__main__":
    main()
