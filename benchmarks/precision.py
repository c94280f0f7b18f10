"""Does bf16 autocast on the CPU keep the loss? fp32 against bf16-mixed, trained from the same seed.

Usage: python benchmarks/precision.py [--steps 300] [--out runs/precision] [--methods dpm pdae drl] [--table-only]

For each method (configs/dpm.yaml, pdae.yaml, drl.yaml as shipped, apart from the precision) three
runs of --steps steps: fp32 seed 0, fp32 seed 1 (the run-to-run noise) and bf16-mixed seed 0
(same data order and noise draws as fp32 seed 0, so the gap is the precision's alone). PDAE
adapts this benchmark's fp32 seed-0 DPM. Per run: the training loss every 10 steps, the mean loss
over the last quarter of the steps, training images/s, and at the end the linear probe and the
10-labels-per-class logistic regression on the validation split (TimeToAccuracy; the DPM through
its DPM features, middle block, t = 50). bf16 "agrees" when its gap to fp32 seed 0 is within the
seed-to-seed gap, or within 2% of the loss and two standard errors of a probe accuracy on the 2000
validation images (about 1.8 points), whichever is larger (one seed pair alone is a rough noise
estimate); otherwise "bf16 worse" or "bf16 better". A config defaults to bf16 unless it is worse.
Writes OUT/results.md, results.json, loss_curves.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from compare import REPO, diffrep

METHODS = {"dpm": "configs/dpm.yaml", "pdae": "configs/pdae.yaml", "drl": "configs/drl.yaml"}
EVAL_IMAGES = 2000  # validation images the probes score
RUNS = (("fp32", "32-true", 0), ("fp32 seed 1", "32-true", 1), ("bf16", "bf16-mixed", 0))
OVERRIDES = """trainer:
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: {run_dir}, name: csv, version: fit}}
  log_every_n_steps: 10
  limit_val_batches: 0
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {run_dir}/checkpoints, save_last: true, save_top_k: 0}}
    - class_path: diffrep.callbacks.TimeToAccuracy
      init_args: {{at_minutes: [100000], splits: [val], max_train: 5000, max_eval: {eval_images}{extra}}}
"""


def losses(run_dir: Path) -> list[tuple[int, float]]:
    with (run_dir / "csv/fit/metrics.csv").open() as f:
        return [(int(r["step"]), float(r["train/loss"])) for r in csv.DictReader(f) if r.get("train/loss")]


def run(method: str, label: str, precision: str, seed: int, steps: int, out: Path, log: Path) -> dict:
    name = "dpm" if (method, label) == ("dpm", "fp32") else f"{method}_{label.replace(' ', '_')}"
    run_dir = out / "runs" / name  # the fp32 seed-0 DPM is runs/dpm, the DPM configs/pdae.yaml reads
    shutil.rmtree(run_dir, ignore_errors=True)  # a rerun starts clean (diffrep fit refuses an old last.ckpt)
    extra = ", dpm_features: {layer: middle_block, t: 50}" if method == "dpm" else ""
    overrides = out / f"overrides_{name}.yaml"
    overrides.write_text(OVERRIDES.format(run_dir=run_dir, extra=extra, eval_images=EVAL_IMAGES))
    diffrep(["fit", "--config", str(REPO / METHODS[method]), "--config", str(overrides), "--seed_everything",
             str(seed), "--trainer.precision", precision, "--trainer.max_steps", str(steps),
             "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false",
             "--emulated_bf16", "true"], out, log)  # measure bf16 even where the CPU only emulates it
    point = json.loads((run_dir / "time_to_accuracy.jsonl").read_text().splitlines()[-1])
    curve = losses(run_dir)
    tail = [loss for step, loss in curve if step >= 0.75 * steps]
    return {"curve": curve, "final_loss": sum(tail) / len(tail), "images_per_s": steps * 64 / (60 * point["minutes"]),
            "linear": point["val/linear"], "semi_10": point["val/semi_10_supervised"]}


def verdict(r: dict, eval_images: int = EVAL_IMAGES) -> str:
    """'agrees' when bf16's gap to fp32 (same seed) is within the noise on every measure: the
    seed-to-seed gap, or 2% of the loss and two standard errors of an accuracy on ``eval_images``
    images, whichever is larger. Otherwise 'bf16 worse' if it is worse beyond the noise on any
    measure (higher loss, lower accuracy), else 'bf16 better'."""
    fp, seed1, bf = r["fp32"], r["fp32 seed 1"], r["bf16"]
    gains = []  # bf16's gain on each measure, in units of that measure's noise
    loss_noise = max(abs(seed1["final_loss"] - fp["final_loss"]), 0.02 * fp["final_loss"])
    gains.append((fp["final_loss"] - bf["final_loss"]) / loss_noise)
    for key in ("linear", "semi_10"):
        standard_error = (fp[key] * (1 - fp[key]) / eval_images) ** 0.5
        gains.append((bf[key] - fp[key]) / max(abs(seed1[key] - fp[key]), 2 * standard_error))
    if all(abs(g) <= 1 for g in gains):
        return "agrees"
    return "bf16 worse" if min(gains) < -1 else "bf16 better"


def write(out: Path, steps: int, results: dict) -> str:
    lines = ["| method | run | loss (last quarter) | val linear | val 10/class | img/s | bf16 |",
             "|---|---|---:|---:|---:|---:|---|"]
    for method, r in results.items():
        for label in (x[0] for x in RUNS):
            if label in r:
                d = r[label]
                mark = verdict(r) if label == "bf16" and len(r) == len(RUNS) else ""
                lines.append(f"| {method} | {label} | {d['final_loss']:.4f} | {100 * d['linear']:.1f} | "
                             f"{100 * d['semi_10']:.1f} | {d['images_per_s']:.0f} | {mark} |")
    text = f"steps: {steps}\n\n" + "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"steps": steps, "results": results}, indent=2))
    plot(results, out / "loss_curves.png")
    return text


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), squeeze=False)
    for ax, (method, r) in zip(axes[0], results.items(), strict=True):
        for label, d in r.items():
            ax.plot(*zip(*d["curve"], strict=True), label=label, linewidth=1)
        ax.set(title=method, xlabel="step", ylabel="training loss", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "runs/precision")
    parser.add_argument("--methods", nargs="*", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--table-only", action="store_true", help="rewrite results.md from results.json")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        saved = json.loads((out / "results.json").read_text())
        print(write(out, saved["steps"], saved["results"]))
        return
    if "pdae" in args.methods and "dpm" not in args.methods and not (out / "runs/dpm/checkpoints/last.ckpt").is_file():
        raise SystemExit("PDAE adapts this benchmark's fp32 DPM: include --methods dpm")
    results: dict = {}
    for method in sorted(args.methods, key=list(METHODS).index):
        results[method] = {}
        for label, precision, seed in RUNS:
            results[method][label] = run(method, label, precision, seed, args.steps, out, out / "precision.log")
            write(out, args.steps, results)
    print(write(out, args.steps, results))


if __name__ == "__main__":
    main()
