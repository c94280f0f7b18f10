"""Every method and baseline on Fashion-MNIST 32x32 with one budget and one evaluation.

Usage: python benchmarks/compare.py [--quick] [--out runs/compare] [--only NAME ...]

Each entry is trained with `diffrep fit` on its shipped config (the config's own step budget,
or --steps N for all; --quick: 60 steps) and evaluated with `diffrep test` and
configs/eval/fashion_mnist.yaml (--quick: fashion_mnist_quick.yaml). Runs happen inside --out,
so the configs' relative paths (runs/dpm/..., which PDAE reads) point at this comparison's own
models and never at the demo's. The training callbacks of each config are replaced by one
checkpoint callback, so fit times measure training. Writes OUT/results.md (the table),
OUT/results.json (every report and the wall times) and each report beside its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diffrep.report import comparison  # noqa: E402


@dataclass
class Entry:
    name: str
    config: str
    run_dir: str  # the config's default_root_dir
    fit_args: list[str] = field(default_factory=list)
    trains: bool = True
    evaluates: bool = True  # the DPM is trained only as PDAE's stage 1


ENTRIES = [
    Entry("DPM (stage 1 of PDAE)", "configs/dpm.yaml", "runs/dpm", evaluates=False),
    Entry("PDAE", "configs/pdae.yaml", "runs/pdae"),
    Entry("DRL, uniform t", "configs/drl.yaml", "runs/drl"),
    Entry("DRL, high-noise t", "configs/drl.yaml", "runs/drl_high_noise",
          ["--model.init_args.time_sampler", "high_noise"]),
    Entry("VDRL", "configs/vdrl.yaml", "runs/vdrl"),
    Entry("Diff-AE", "configs/diffae.yaml", "runs/diffae"),
    Entry("pixels", "configs/baselines/pixels.yaml", "runs/baselines/pixels", trains=False),
    Entry("PCA (32)", "configs/baselines/pca.yaml", "runs/baselines/pca", trains=False),
    Entry("autoencoder", "configs/baselines/autoencoder.yaml", "runs/baselines/autoencoder"),
    Entry("VAE", "configs/baselines/vae.yaml", "runs/baselines/vae"),
]

COLUMNS = {
    "probe/linear_accuracy": "linear", "probe/knn_accuracy": "20-NN",
    "probe/few_label_1_mean": "1/class", "probe/few_label_10_mean": "10/class", "probe/few_label_100_mean": "100/class",
    "recon/inverted_mse": "MSE (inv.)", "recon/inverted_ssim": "SSIM (inv.)", "recon/random_mse": "MSE (rand.)",
    "fid/reconstructions": "rFID", "fid/samples": "FID",
}


FIT_CALLBACKS = """trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {dirpath}, save_last: true, save_top_k: 0}}
"""


def diffrep(args: list[str], cwd: Path, log: Path) -> float:
    """Run the CLI, append its output to ``log``, return its wall time; stop on failure."""
    start = time.perf_counter()
    with log.open("a") as f:
        f.write(f"\n$ diffrep {' '.join(args)}\n")
        f.flush()
        code = subprocess.run([sys.executable, "-m", "diffrep.cli", *args], cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"diffrep {' '.join(args[:3])} failed (exit {code}); see {log}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 training steps each and the quick evaluation")
    parser.add_argument("--steps", type=int, help="training steps for every method (default: each config's)")
    parser.add_argument("--out", type=Path, default=REPO / "runs/compare")
    parser.add_argument("--only", nargs="*", help="names of entries to run (default: all)")
    parser.add_argument("--extractor", type=Path, default=REPO / "runs/fid/fashion_mnist_classifier.pt")
    args = parser.parse_args()
    if not args.extractor.is_file():
        raise SystemExit(f"FID extractor {args.extractor} missing: run `make fid-extractor` first")
    out = args.out.resolve()
    (out / "runs/fid").mkdir(parents=True, exist_ok=True)
    shutil.copy(args.extractor, out / "runs/fid/fashion_mnist_classifier.pt")
    steps = 60 if args.quick and args.steps is None else args.steps
    eval_config = str(REPO / f"configs/eval/fashion_mnist{'_quick' if args.quick else ''}.yaml")
    log = out / "compare.log"
    reports, names, times = [], [], {}
    for entry in ENTRIES:
        if args.only and entry.name not in args.only and entry.name.split(",")[0] not in args.only:
            continue
        config = str(REPO / entry.config)
        run_dir = out / entry.run_dir
        common = ["--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false"]
        fit_seconds = test_seconds = 0.0
        ckpt_args: list[str] = []
        if entry.trains:
            # The method's own training callbacks (grids, probes) are replaced by one checkpoint,
            # so fit times measure training and every run keeps its checkpoint in its own folder.
            callbacks = out / f"fit_callbacks_{run_dir.name}.yaml"
            callbacks.write_text(FIT_CALLBACKS.format(dirpath=run_dir / "checkpoints"))
            budget = ["--trainer.max_steps", str(steps)] if steps else []
            fit_seconds = diffrep(["fit", "--config", config, "--config", str(callbacks), "--trainer.logger", "false",
                                   *budget, *entry.fit_args, *common], out, log)
            ckpt_args = ["--ckpt_path", str(run_dir / "checkpoints/last.ckpt")]
        if entry.evaluates:
            test_seconds = diffrep(["test", "--config", config, "--config", eval_config, *entry.fit_args, *common,
                                    *ckpt_args], out, log)
            report_path = (run_dir / "checkpoints/last.report.json") if ckpt_args else run_dir / "report.json"
            reports.append(json.loads(report_path.read_text()))
            names.append(entry.name)
        times[entry.name] = {"fit_s": round(fit_seconds), "test_s": round(test_seconds)}
        print(f"{entry.name}: fit {fit_seconds / 60:.1f} min, test {test_seconds / 60:.1f} min", flush=True)
    table = comparison(reports, COLUMNS, names)
    (out / "results.json").write_text(json.dumps({"quick": args.quick, "steps": steps, "times": times,
                                                  "reports": dict(zip(names, reports, strict=True))}, indent=2))
    (out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
