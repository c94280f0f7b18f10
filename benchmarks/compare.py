"""Every method and baseline on Fashion-MNIST 32x32 with one budget and one evaluation.

Usage: python benchmarks/compare.py [--quick] [--steps N] [--out runs/compare] [--only NAME ...] [--redo NAME ...]
                                   [--diagnostics] [--semi] [--seeds N]
                                   [--precision 32-true|bf16-mixed]
       python benchmarks/compare.py --table-only   # rewrite results.md from results.json

Budget: the DPM (PDAE's stage 1) trains for STAGE1_STEPS = 1500 steps (the budget the published
tables were measured with; configs/dpm.yaml itself runs 1000, sized for `make demo`); every representation
learner (PDAE on that DPM, DRL, VDRL, Diff-AE, autoencoder, VAE) for the same --steps (default
1000) optimizer steps of batch 64; pixels and PCA need no training. --quick: 60 steps each.
--diagnostics adds the runs that change one setting of an entry (DIAGNOSTICS below).

Each entry is trained with `diffrep fit` on its shipped config, with the config's training
callbacks replaced by a checkpoint and a small linear probe every 250 steps (the probe accuracy
against training step; about 10 s each, included in the fit time), and evaluated with
`diffrep test` and configs/eval/fashion_mnist_compare.yaml (the DPM, which has no learned code,
with ..._compare_generative.yaml; --quick: the _quick variants). Runs happen inside --out, so the
configs' relative paths (runs/dpm/..., which PDAE reads) point at this comparison's own models.

--semi: the label-scarce evaluation instead (configs/eval/fashion_mnist_semi.yaml: linear probe,
supervised / label spreading / self-training at 1, 10, 100 labels per class, SVMs on 100 and 1000
labels, the probe against t of a time-dependent code), in runs/compare_semi; the DPM is trained for
DPM features (the DDAE entry) but not evaluated itself, since it has no code. No FID extractor needed.

--seeds N trains every entry that learns with the training seeds 0..N-1 (`seed_everything`: initial
weights, noise and t; the data order and the validation split stay seed 0's): seed k in its own folders
(`runs/X_seed<k>`; PDAE and the DPM features of seed k read the DPM of seed k). Seed 0 is the run a
plain call makes. The table is then the mean over the seeds and a second table gives the standard
deviation over them, of every entry with several; an entry with nothing to train has one.

Resumable by entry and seed: OUT/results.json keeps every finished run, and a rerun with the same
settings skips them (--redo NAME ... retrains those, NAME@K seed K alone); where OUT/results.json is
missing (a fresh clone), its committed copy does (an entry still to run that reads a finished DPM needs
that DPM's checkpoint, which only runs/ held: then --redo the DPM's seed and every finished entry that
reads it, e.g. --redo "DPM (stage 1 of PDAE)@2" "DPM features@2" before PDAE's seed 2). Writes
OUT/results.md (the tables),
OUT/results.json (reports, wall times, probe curves, the machine of each run, and a summary: each
entry's mean and std over its seeds) with its committed copy benchmarks/results/<OUT's name>.json,
and OUT/figures/ (reconstructions, interpolations and latent plots of each method, and the probe curve).
"""

from __future__ import annotations

import argparse
import csv
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
    has_code: bool = True  # False: the DPM, evaluated on reconstruction and samples only
    own_budget: bool = False  # True: STAGE1_STEPS (times budget_multiple), not --steps
    budget_multiple: int = 1
    continues: str | None = None  # the run_dir whose last checkpoint this fit resumes (a longer DPM)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.name.lower()).strip("_").replace("__", "_")


ENTRIES = [  # run (and table) order: the cheap baselines first, then the DPM before PDAE
    Entry("pixels", "configs/baselines/pixels.yaml", "runs/baselines/pixels", trains=False),
    Entry("PCA (32)", "configs/baselines/pca.yaml", "runs/baselines/pca", trains=False),
    Entry("autoencoder", "configs/baselines/autoencoder.yaml", "runs/baselines/autoencoder"),
    Entry("VAE", "configs/baselines/vae.yaml", "runs/baselines/vae"),
    Entry("SimCLR", "configs/baselines/simclr.yaml", "runs/baselines/simclr"),
    Entry("SimCLR-Gauss", "configs/baselines/simclr_gauss.yaml", "runs/baselines/simclr_gauss"),
    Entry("DPM (stage 1 of PDAE)", "configs/dpm.yaml", "runs/dpm", has_code=False, own_budget=True),
    # DDAE: the stage-1 DPM's own features (layer and t chosen on the validation split); trains nothing
    Entry("DPM features", "configs/dpm_features.yaml", "runs/dpm_features", trains=False),
    Entry("PDAE", "configs/pdae.yaml", "runs/pdae"),
    Entry("DRL, uniform t", "configs/drl.yaml", "runs/drl"),
    Entry("DRL, high-noise t", "configs/drl.yaml", "runs/drl_high_noise",
          ["--model.init_args.objective.time_sampler", "high_noise"]),
    Entry("VDRL", "configs/vdrl.yaml", "runs/vdrl"),
    Entry("Diff-AE", "configs/diffae.yaml", "runs/diffae"),
]

# --diagnostics: why PDAE's and Diff-AE's codes fall short at this budget (docs/results.md). Each
# changes one setting of its method's entry; for PDAE, to the paper's direction: a 512-d code, a
# DPM trained twice as long (the 1500-step DPM resumed to 3000 steps; its learning rate is constant
# after warm-up, so this is the same run as one trained for 3000 steps from the start).
DIAGNOSTICS = [
    Entry("PDAE, 512-d code", "configs/pdae.yaml", "runs/pdae_latent512", ["--model.init_args.latent_dim", "512"]),
    Entry("DPM, 2x steps", "configs/dpm.yaml", "runs/dpm_2x", has_code=False, own_budget=True,
          budget_multiple=2, continues="runs/dpm"),
    Entry("PDAE on the 2x DPM", "configs/pdae.yaml", "runs/pdae_dpm_2x",
          ["--model.init_args.dpm_checkpoint", "runs/dpm_2x/checkpoints/last.ckpt"]),
    # Diff-AE differs from DRL in its encoder (half U-Net, pooled), its conditioning (z scales the
    # U-Net's features) and its schedule (DDPM, not VE); this one takes DRL's conv encoder.
    Entry("Diff-AE, conv encoder", "configs/diffae.yaml", "runs/diffae_conv",
          ["--model.init_args.encoder", "{kind: conv, channels: [32, 64, 128], num_groups: 8, num_heads: 1}"]),
    # DRL's time-dependent code as the paper builds it, CPU-sized: the time-conditioned WRN at depth
    # 10, width 1 (64-d code E(x0, t); the paper: WRN-28-2, 128-d) and NCSN++'s code injection
    Entry("DRL, time-dependent WRN", "configs/drl.yaml", "runs/drl_time_wrn",
          ["--model.init_args.encoder", "{kind: wrn, depth: 10, widen_factor: 1}",
           "--model.init_args.code.latent_dim", "64", "--model.init_args.code.time_dependent", "true",
           "--model.init_args.network.z_mode", "ncsnpp"]),
]
ALL_ENTRIES = ENTRIES + DIAGNOSTICS

SEMI_COLUMNS = {"probe/linear_accuracy": "linear"}
for _k in (1, 10, 100):
    SEMI_COLUMNS[f"semi/supervised_{_k}_mean"] = f"sup. {_k}/cl"
    SEMI_COLUMNS[f"semi/label_spreading_{_k}_mean"] = f"LS {_k}/cl"
    SEMI_COLUMNS[f"semi/self_training_{_k}_mean"] = f"ST {_k}/cl"
    SEMI_COLUMNS[f"semi/laplace_{_k}_mean"] = f"Laplace {_k}/cl"
    SEMI_COLUMNS[f"semi/poisson_{_k}_mean"] = f"Poisson {_k}/cl"
SEMI_COLUMNS.update({"downstream/svm_100_mean": "SVM 100", "downstream/svm_1000_mean": "SVM 1000",
                     "downstream/mlp_mean": "MLP"})
COLUMNS = {
    "probe/linear_accuracy": "linear", "probe/knn_accuracy": "20-NN",
    "probe/few_label_1_mean": "1/class", "probe/few_label_10_mean": "10/class", "probe/few_label_100_mean": "100/class",
    "recon/inverted_mse": "MSE (inv.)", "recon/inverted_ssim": "SSIM (inv.)", "recon/random_mse": "MSE (rand.)",
    "fid/reconstructions": "rFID", "fid/samples": "FID",
}
FORMATS = {m: (lambda v: f"{100 * v:.1f}%") for m in [*COLUMNS, *SEMI_COLUMNS] if m.startswith(("probe/", "semi/",
                                                                                                "downstream/"))}
FORMATS.update({"recon/inverted_mse": "{:.4f}".format, "recon/random_mse": "{:.3f}".format,
                "recon/inverted_ssim": "{:.3f}".format, "fid/reconstructions": "{:.0f}".format,
                "fid/samples": "{:.0f}".format})
#: the README's headline columns (--semi): each cell the mean ± std over training seeds
HEADLINE_COLUMNS = {"probe/linear_accuracy": "linear", "semi/supervised_10_mean": "10/class sup.",
                    "semi/label_spreading_10_mean": "10/class LS", "downstream/svm_1000_mean": "SVM 1000",
                    "downstream/mlp_mean": "MLP"}
FIGURES = ("reconstructions", "interpolations", "latent_plot", "probe_against_t", "dpm_feature_sweep")
PROBE_EVERY = 250

FIT_OVERRIDES = """trainer:
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: {run_dir}, name: csv, version: fit}}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {run_dir}/checkpoints, save_last: true, save_top_k: 0}}
{probe}"""
CURVE_PROBE = """    - class_path: diffrep.callbacks.LinearProbe
      init_args: {{every_n_steps: {every}, every_n_epochs: 1000000, max_train: 5000, max_test: 2000}}
"""


def diffrep(args: list[str], cwd: Path, log: Path) -> float:
    """Run the CLI, append its output to ``log``, return its wall time; stop on failure."""
    start = time.perf_counter()
    with log.open("a") as f:
        f.write(f"\n$ diffrep {' '.join(args)}\n")
        f.flush()
        command = [sys.executable, "-m", "diffrep.cli", *args]
        code = subprocess.run(command, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"diffrep {' '.join(args[:3])} failed (exit {code}); see {log}")
    return time.perf_counter() - start


# The stage-1 DPM's budget here, fixed rather than read from configs/dpm.yaml: the demo config was cut
# to 1000 steps for `make demo`'s time, and a rerun must reproduce the published tables (1500 steps).
STAGE1_STEPS = 1500


def fit_steps(entry: Entry, quick: bool, steps: int) -> int:
    """The entry's training budget: --steps, or STAGE1_STEPS (60 under --quick) times its multiple."""
    if not entry.own_budget:
        return steps
    return (60 if quick else STAGE1_STEPS) * entry.budget_multiple


def probe_curve(run_dir: Path) -> list[list[float]]:
    """[step, linear accuracy] rows the fit's CSV log holds."""
    path = run_dir / "csv/fit/metrics.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("probe/linear_accuracy")]
    return [[int(r["step"]), float(r["probe/linear_accuracy"])] for r in rows]


def collect_figures(run_dir: Path, figures: Path, slug: str) -> list[str]:
    """Copy the newest test image of each kind to figures/<slug>_<kind>.png."""
    copied = []
    for kind in FIGURES:
        found = sorted((run_dir / "images").glob(f"*{kind}*.png"), key=lambda p: p.stat().st_mtime)
        if found:
            target = figures / f"{slug}_{kind}.png"
            shutil.copy(found[-1], target)
            copied.append(target.name)
    return copied


def plot_probe_curves(curves: dict[str, list[list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in curves.items():
        if rows:
            ax.plot([r[0] for r in rows], [100 * r[1] for r in rows], marker="o", label=name)
    ax.set(xlabel="training step", ylabel="linear probe accuracy (%)", title="Fashion-MNIST, 5000/2000 codes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def seed_reports(d: dict) -> list[dict]:
    """The test reports of every training seed of one entry: seed 0's, then those under "seeds"."""
    return [d["report"], *(run["report"] for _, run in sorted(d.get("seeds", {}).items(), key=lambda kv: int(kv[0])))]


def over_seeds(reports: list[dict], statistic: str) -> dict:
    """A report whose metrics are the mean (or the sample std) over the seeds' reports."""
    import statistics

    keys = [k for k, v in reports[0]["metrics"].items() if isinstance(v, (int, float))
            and all(isinstance(r["metrics"].get(k), (int, float)) for r in reports)]
    if statistic == "mean":
        metrics = {k: statistics.fmean(r["metrics"][k] for r in reports) for k in keys}
    else:
        metrics = {k: statistics.stdev([r["metrics"][k] for r in reports]) for k in keys}
    return {**reports[0], "metrics": metrics}


def write_results(out: Path, settings: dict, done: dict, keep: Path | None = None) -> str:
    """OUT/results.md and results.json (and its committed copy ``keep``, the file the docs quote)."""
    names = [e.name for e in ALL_ENTRIES if e.name in done and done[e.name].get("report")]
    columns = SEMI_COLUMNS if settings.get("semi") else COLUMNS
    table = comparison([over_seeds(seed_reports(done[n]), "mean") for n in names], columns, names, FORMATS)
    several = [n for n in names if len(seed_reports(done[n])) > 1]
    if several:
        spread = comparison([over_seeds(seed_reports(done[n]), "std") for n in several], columns, several, FORMATS)
        seeds = {n: len(seed_reports(done[n])) for n in several}
        table += (f"\n## Standard deviation over training seeds ({json.dumps(seeds)}; the table above is their "
                  f"mean)\n\n{spread}")
    times = ["| method | steps | fit (min) | test (min) |", "|---|---:|---:|---:|"]
    for name in (e.name for e in ALL_ENTRIES if e.name in done):
        d = done[name]
        times.append(f"| {name} | {d['steps'] or '-'} | {d['fit_s'] / 60:.1f} | {d['test_s'] / 60:.1f} |")
    curves = {n: d["probe_curve"] for n, d in done.items() if d.get("probe_curve")}
    curve_lines = ["| method | " + " | ".join(f"step {s}" for s, _ in next(iter(curves.values()), [])) + " |"]
    curve_lines.append("|---|" + "---:|" * (len(curve_lines[0].split("|")) - 3))
    curve_lines += [f"| {n} | " + " | ".join(f"{100 * a:.1f}%" for _, a in rows) + " |" for n, rows in curves.items()]
    if curves:
        plot_probe_curves(curves, out / "figures/probe_curve.png")
    rows = summary(done, names)
    if settings.get("semi"):
        table += ("\n## Mean ± std over training seeds (the README's columns, %)\n\n"
                  + headline_table(rows, HEADLINE_COLUMNS))
    text = (f"settings: {json.dumps(settings)}\n\n## Fashion-MNIST test\n\n{table}\n## Wall time (2-core CPU)\n\n"
            + "\n".join(times) + "\n\n## Linear probe against training step (5000 train / 2000 test codes)\n\n"
            + "\n".join(curve_lines) + "\n")
    record = json.dumps({"settings": settings, "summary": rows, "entries": done}, indent=2)
    (out / "results.json").write_text(record)
    if keep is not None:
        keep.write_text(record)
    (out / "results.md").write_text(text)
    return text


def headline_table(rows: dict, columns: dict[str, str]) -> str:
    """Markdown, one row per entry of ``summary``: accuracies as "mean ± std" over its training seeds (the mean
    alone with one seed), and the number of seeds. An entry with none of the columns (the DPM: no code) is left out."""
    lines = ["| codes | seeds | " + " | ".join(columns.values()) + " |", "|---|---:|" + "---:|" * len(columns)]
    for name, row in rows.items():
        if all(row["mean"].get(metric) is None for metric in columns):
            continue
        cells = []
        for metric in columns:
            mean, std = row["mean"].get(metric), (row["std"] or {}).get(metric)
            cells.append("-" if mean is None else f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}"))
        lines.append(f"| {name} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary(done: dict, names: list[str]) -> dict:
    """Per entry: how many training seeds, the mean of every metric over them and its sample std (None
    with one seed), and the machines they ran on: the numbers the docs quote."""
    rows = {}
    for name in names:
        reports = seed_reports(done[name])
        runs = [done[name], *done[name].get("seeds", {}).values()]
        rows[name] = {"seeds": len(reports), "mean": over_seeds(reports, "mean")["metrics"],
                      "std": over_seeds(reports, "std")["metrics"] if len(reports) > 1 else None,
                      "machines": sorted({r.get("machine", "not recorded") for r in runs})}
    return rows


def stored_copy(out: Path) -> Path:
    """benchmarks/results/<OUT's name>.json (compare_ put before a name that lacks it): the committed copy
    of OUT/results.json."""
    name = out.name if out.name.startswith("compare") else f"compare_{out.name}"
    return REPO / "benchmarks/results" / f"{name}.json"


def latest_test_report(run_dir: Path, from_checkpoint: bool) -> Path:
    """The report `diffrep test` just wrote: beside the checkpoint (``last.report[-vN].json``) or, for
    an entry with nothing trained, in the run folder (``test_report[-vN].json``); reports are never
    overwritten, so the newest is this evaluation's."""
    folder, stem = (run_dir / "checkpoints", "last.report") if from_checkpoint else (run_dir, "test_report")
    reports = [p for p in folder.glob(f"{stem}*.json") if p.stem == stem or p.stem.startswith(f"{stem}-v")]
    if not reports:
        raise SystemExit(f"diffrep test wrote no {stem}*.json in {folder}; see its log in the output folder")
    return max(reports, key=lambda p: p.stat().st_mtime)


DPM_READERS = ("configs/pdae.yaml", "configs/dpm_features.yaml")  # read runs/dpm/checkpoints/last.ckpt


def reads_the_dpm(entry: Entry) -> bool:
    return entry.config in DPM_READERS


def takes_seeds(entry: Entry) -> bool:
    """Whether --seeds N runs the entry N times: it trains, or reads the DPM of each seed (pixels, PCA: once)."""
    return entry.trains or reads_the_dpm(entry)


def seeded_run_dir(run_dir: str, seed: int) -> str:
    """Seed 0 trains in the entry's folder, seed k in ``<folder>_seed<k>`` (time_to_accuracy.py too)."""
    return run_dir if seed == 0 else f"{run_dir}_seed{seed}"


def run_entry(entry: Entry, seed: int, args: argparse.Namespace, out: Path, steps: int, log: Path) -> dict:
    """Fit (if the entry trains) and test one entry at one training seed; its record for results.json."""
    config = str(REPO / entry.config)
    run_dir = out / seeded_run_dir(entry.run_dir, seed)
    fit_args = [seeded_run_dir(a[: a.index("/checkpoints")], seed) + a[a.index("/checkpoints"):]
                if a.startswith("runs/") and "/checkpoints" in a else a for a in entry.fit_args]
    if seed and reads_the_dpm(entry) and "--model.init_args.dpm_checkpoint" not in fit_args:
        fit_args += ["--model.init_args.dpm_checkpoint", f"{seeded_run_dir('runs/dpm', seed)}/checkpoints/last.ckpt"]
    common = ["--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false",
              "--seed_everything", str(seed), *(["--trainer.precision", args.precision] if args.precision else [])]
    fit_seconds = test_seconds = 0.0
    ckpt_args: list[str] = []
    entry_steps = None
    if entry.trains:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an interrupted or redone entry starts clean
        overrides = out / f"fit_overrides_{entry.slug}{f'_seed{seed}' if seed else ''}.yaml"
        probe = CURVE_PROBE.format(every=PROBE_EVERY) if entry.has_code else ""
        overrides.write_text(FIT_OVERRIDES.format(run_dir=run_dir, probe=probe))
        entry_steps = fit_steps(entry, args.quick, steps)
        budget = ["--trainer.max_steps", str(entry_steps)]
        resume = (["--ckpt_path", str(out / seeded_run_dir(entry.continues, seed) / "checkpoints/last.ckpt")]
                  if entry.continues else [])
        fit_seconds = diffrep(["fit", "--config", config, "--config", str(overrides), *budget, *fit_args,
                               *common, *resume], out, log)
        ckpt_args = ["--ckpt_path", str(run_dir / "checkpoints/last.ckpt")]
    kind = "semi" if args.semi else ("quick" if args.quick else "compare")
    kind += "" if entry.has_code else "_generative"
    report = None
    if entry.has_code or not args.semi:  # --semi: a model with no code is only trained (DPM features use it)
        eval_config = str(REPO / f"configs/eval/fashion_mnist_{kind}.yaml")
        test_seconds = diffrep(["test", "--config", config, "--config", eval_config, *fit_args, *common,
                                *ckpt_args], out, log)
        report = json.loads(latest_test_report(run_dir, bool(ckpt_args)).read_text())
    # the CPU and whether its bf16 is native (the configs' bf16-mixed trains in fp32 where it is not), so
    # that seeds run on two machines show in the record
    from official_speed import machine

    return {
        "report": report, "seed": seed, "date": time.strftime("%Y-%m-%d"), "machine": machine(),
        "steps": entry_steps if entry.trains else 0,
        "fit_s": round(fit_seconds), "test_s": round(test_seconds), "probe_curve": probe_curve(run_dir),
        "figures": collect_figures(run_dir, out / "figures", entry.slug + (f"_seed{seed}" if seed else "")),
    }


def forget_redone(done: dict, name: str, redo: list[str]) -> None:
    """Drop what ``--redo`` names of entry ``name`` from the finished runs: ``NAME`` every seed, ``NAME@K``
    seed K alone (K >= 1; the other seeds' runs are kept under seed 0's record, so ``NAME@0`` is ``NAME``).
    One seed again: a DPM whose checkpoint only another machine's runs/ held, for an entry that reads it."""
    for item in redo:
        target, _, seed = item.partition("@")
        if target not in (name, name.split(",")[0]):
            continue
        if seed and int(seed) > 0:
            done.get(name, {}).get("seeds", {}).pop(seed, None)
        else:
            done.pop(name, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 training steps each and the quick evaluation")
    parser.add_argument("--steps", type=int, help="training steps of every representation learner (default 1000)")
    parser.add_argument("--out", type=Path, help="default runs/compare (runs/compare_semi with --semi)")
    parser.add_argument("--only", nargs="*", help="names of entries to run (default: all)")
    parser.add_argument("--redo", nargs="*", default=[],
                        help="names of finished entries to run again (NAME@K: training seed K alone)")
    parser.add_argument("--diagnostics", action="store_true",
                        help="also the diagnostics: PDAE with a 512-d code, PDAE on a DPM trained twice as long, "
                        "Diff-AE with DRL's conv encoder")
    parser.add_argument("--semi", action="store_true",
                        help="the label-scarce evaluation (configs/eval/fashion_mnist_semi.yaml) in place of the "
                        "standard one; default --out runs/compare_semi")
    parser.add_argument("--table-only", action="store_true", help="rewrite results.md from results.json, run nothing")
    parser.add_argument("--seeds", type=int, default=1,
                        help="training seeds 0..N-1 of every entry that trains (tables: their mean, and their std)")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"],
                        help="every entry in this precision (default: each config's own, bf16-mixed for the diffusion "
                        "methods, which trains in fp32 on a CPU without native bf16): seeds run on two machines "
                        "then share one precision")
    parser.add_argument("--extractor", type=Path, default=REPO / "runs/fid/fashion_mnist_classifier.pt")
    args = parser.parse_args()
    args.out = args.out or REPO / ("runs/compare_semi" if args.semi else "runs/compare")
    if args.table_only:
        source = args.out / "results.json" if (args.out / "results.json").is_file() else stored_copy(args.out)
        if not source.is_file():  # a fresh clone has the stored copy only
            raise SystemExit(f"{args.out / 'results.json'} not found: run the comparison first")
        (args.out / "figures").mkdir(parents=True, exist_ok=True)
        saved = json.loads(source.read_text())
        print(write_results(args.out.resolve(), saved["settings"], saved["entries"], stored_copy(args.out)))
        return
    if not args.semi and not args.extractor.is_file():
        raise SystemExit(f"FID extractor {args.extractor} missing: run `make fid-extractor` first")
    out = args.out.resolve()
    (out / "runs/fid").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    if not args.semi:
        shutil.copy(args.extractor, out / "runs/fid/fashion_mnist_classifier.pt")
    steps = args.steps or (60 if args.quick else 1000)
    settings = {"quick": args.quick, "steps": steps, **({"semi": True} if args.semi else {}),
                **({"precision": args.precision} if args.precision else {})}
    # a fresh clone (runs/ empty) resumes from the committed copy: its finished runs are not trained again
    stored = out / "results.json" if (out / "results.json").is_file() else stored_copy(out)
    previous = json.loads(stored.read_text()) if stored.is_file() else {}
    done = previous.get("entries", {}) if previous.get("settings") == settings else {}
    log = out / "compare.log"

    def selected(entry: Entry, names: list[str] | None) -> bool:
        return bool(names) and (entry.name in names or entry.name.split(",")[0] in names)

    if args.seeds < 1:
        parser.error(f"--seeds takes the number of training seeds (>= 1), got {args.seeds}")
    for entry in ALL_ENTRIES if args.diagnostics else ENTRIES:
        if args.only and not selected(entry, args.only):
            continue
        forget_redone(done, entry.name, args.redo)
        for seed in range(args.seeds if takes_seeds(entry) else 1):
            if entry.name in done and (seed == 0 or str(seed) in done[entry.name].get("seeds", {})):
                print(f"{entry.name}, seed {seed}: done before (results.json), skipped", flush=True)
                continue
            run = run_entry(entry, seed, args, out, steps, log)
            if seed == 0:
                done[entry.name] = run
            else:
                done[entry.name].setdefault("seeds", {})[str(seed)] = run
            write_results(out, settings, done, stored_copy(out))  # after every run: an interruption keeps its work
            print(f"{entry.name}, seed {seed}: fit {run['fit_s'] / 60:.1f} min, test {run['test_s'] / 60:.1f} min",
                  flush=True)
    print(write_results(out, settings, done, stored_copy(out)))


if __name__ == "__main__":
    main()
