"""Representation quality against training wall-clock: linear-probe and 10-labels-per-class accuracy
of every method and baseline against CPU minutes of training, counted from scratch.

Usage: python benchmarks/time_to_accuracy.py [--minutes 6] [--dpm-minutes 10] [--out runs/time_to_accuracy]
                                             [--precision bf16-mixed] [--only NAME ...] [--redo NAME ...]
                                             [--table-only] [--reconstruction [--fid-weights PATH]]
                                             [--budget NAME=MINUTES ...] [--seeds N]

Each entry trains with `diffrep fit` on its shipped config plus the `TimeToAccuracy` callback
(diffrep/callbacks/time_to_accuracy.py), which evaluates at 1, 2, 4, 8, 15, 30, 45, 60 training
minutes (evaluation time not counted) and stops the run at its budget: --minutes for every
learner (the autoencoder and the VAE, the strongest baselines, and SimCLR, whose curve still rose
at 6, get the recipe's 60), --dpm-minutes for the DPM. The
DPM's curve is its DPM features (middle block, t = 50, the pair its validation sweep chose,
docs/results.md); PDAE starts from that DPM, so its clock
starts at the DPM's minutes (and it is evaluated at the usual marks on both clocks: 15 minutes counted
from zero and 1, 2, 4, ... of its own). Pixels and PCA train nothing: one point at 0 minutes. DRL's entry is
the recipe (configs/recipes/best_cpu_hour.yaml, `make best-cpu-hour`: configs/drl.yaml in bf16 for
60 minutes), which brings its own budget and callbacks.

Every trained entry runs in --precision (default bf16-mixed, the recipe's), so all curves share
its speed-up. Each point: logistic-regression probe (all 10000 training codes) and 10 labels per class
(supervised logistic regression and label spreading, mean of 3 draws), on 5000 validation and
5000 test images; settings are chosen on the validation curves, the test curves are reported.
With --reconstruction every entry that decodes its code also records, at each point, reconstruction
MSE / SSIM of 500 test images decoded with 25 DDIM steps from their own inverted x_T (pixels in [0, 1])
and the rFID of those decodings (`diffrep-classifier` features, `make fid-extractor`): claim 2 of
docs/claims.md, PDAE against Diff-AE, uses it.
Writes OUT/results.json, OUT/results.md (the table at each entry's last point and at fixed
minutes) and OUT/time_to_accuracy.png, and keeps a copy of the points in
benchmarks/results/time_to_accuracy_<OUT's name>.json, which is committed (runs/ is not) and read
when OUT holds no results.json. Resumable by entry, like benchmarks/compare.py, and an entry an
interrupted call left with a last.ckpt resumes from it.

--seeds N trains every entry that learns with the training seeds 0..N-1 (`seed_everything`: the
initial weights and the noise and t streams; the data order and the validation split stay those of
seed 0, so every seed is scored on the same images), each in its own run folder (`<run>_seed<k>` for
k > 0; PDAE of seed k on the DPM of seed k). Seed 0 is the run a plain call makes, so adding seeds
keeps the runs already done. The tables then show the mean and the standard deviation over the
seeds of every entry that has them (pixels and PCA train nothing and have one). Seeds may be given a
shorter --budget than seed 0's run (claim 2: seed 0 for the hour, seeds 1-2 for 15 minutes): each mark
then counts the seeds that trained that long, and the end-of-run table those that trained as long as seed 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from compare import REPO, diffrep, seeded_run_dir

from diffrep.callbacks.time_to_accuracy import DEFAULT_MARKS, IMAGE_METRICS

CALLBACK = """trainer:
  logger: false
  limit_val_batches: 0
  max_steps: 10000000
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {run_dir}/checkpoints, save_last: true, save_top_k: 0, every_n_train_steps: 1000}}
    - class_path: diffrep.callbacks.TimeToAccuracy
      init_args: {{budget_minutes: {budget}, offset_minutes: {offset}{extra}}}
"""
RECONSTRUCTION = {"num_images": 500, "num_steps": 25}  # --reconstruction: the test images and DDIM steps
# the callback's image metrics as table columns: (heading, format)
IMAGE_COLUMNS = dict(zip(IMAGE_METRICS, (("MSE", "{:.4f}"), ("SSIM", "{:.3f}"), ("rFID", "{:.1f}")), strict=True))
METRICS = {"linear": "linear", "semi_10_supervised": "10/class sup.", "semi_10_label_spreading": "10/class LS"}


RECIPE_STEP_MINUTES = 60.0 / 12188  # the recipe's hour: 12188 steps (docs/results.md)


@dataclass
class Entry:
    name: str
    config: str
    run_dir: str
    kind: str = "learner"  # fixed (trains nothing) | learner | dpm | after_dpm | recipe
    as_long_as_the_recipe: bool = False  # a baseline that may still gain gets the recipe's budget, not --minutes
    overrides: tuple[str, ...] = ()  # command-line overrides after the config
    step_minutes: float | None = None  # the clock counts steps x this (TimeToAccuracy.step_minutes)
    minutes: float | None = None  # its own budget, in place of --minutes


ENTRIES = [
    Entry("pixels", "configs/baselines/pixels.yaml", "runs/baselines/pixels", kind="fixed"),
    Entry("PCA (32)", "configs/baselines/pca.yaml", "runs/baselines/pca", kind="fixed"),
    # the autoencoder's label spreading kept rising after 6 minutes (a 30-minute side run, docs/results.md)
    Entry("autoencoder", "configs/baselines/autoencoder.yaml", "runs/baselines/autoencoder",
          as_long_as_the_recipe=True),
    Entry("VAE", "configs/baselines/vae.yaml", "runs/baselines/vae", as_long_as_the_recipe=True),
    # SimCLR's curve still rose at 6 minutes (docs/results.md), so it too trains for the recipe's hour
    Entry("SimCLR", "configs/baselines/simclr.yaml", "runs/baselines/simclr", as_long_as_the_recipe=True),
    Entry("DPM features", "configs/dpm.yaml", "runs/dpm", kind="dpm"),
    Entry("PDAE", "configs/pdae.yaml", "runs/pdae", kind="after_dpm"),
    Entry("VDRL", "configs/vdrl.yaml", "runs/vdrl"),
    Entry("Diff-AE", "configs/diffae.yaml", "runs/diffae"),
    Entry("Diff-AE, official denoiser", "configs/diffae_official.yaml", "runs/diffae_official"),
    # DRL as configs/drl.yaml ships it, trained for the recipe's 60 minutes: the recipe itself
    Entry("DRL (recipe)", "configs/recipes/best_cpu_hour.yaml", "runs/recipes/best_cpu_hour", kind="recipe"),
    # Opt-in entries (run only when named in --only), each against the recipe's static DRL at equal
    # minutes. Their clock counts steps at the recipe's measured pace (60 min / 12188 steps): side by
    # side, one bf16 step of batch 64 takes the same time for the three (benchmarks/step_time.py: 259 / 258 /
    # 265 ms: U-Net, NCSN++ below, time-dependent WRN; dev CPU, 2026-12-03), and a step clock cannot be shortened by
    # other jobs on the machine.
    # Claim 4 (docs/claims.md): DRL's time-dependent code E(x0, t) as compare.py's diagnostics entry
    # builds it (time-conditioned WRN, depth 10, width 1, 64-d, NCSN++'s code injection), for the hour.
    Entry("DRL, time-dependent WRN", "configs/drl.yaml", "runs/drl_time_wrn", as_long_as_the_recipe=True,
          overrides=("--model.init_args.encoder", "{kind: wrn, depth: 10, widen_factor: 1}",
                     "--model.init_args.code.latent_dim", "64", "--model.init_args.code.time_dependent", "true",
                     "--model.init_args.network.z_mode", "ncsnpp"),
          step_minutes=RECIPE_STEP_MINUTES),
    # Claim 4's seeds: the recipe's static DRL (configs/drl.yaml is the recipe's model, optimiser, clipping and
    # precision) on the step clock, so its seeds and E(x0, t)'s train the same steps at every mark on any
    # machine, with the same trainer settings (validation included); the recipe entry above runs on wall minutes.
    Entry("DRL (recipe), step clock", "configs/drl.yaml", "runs/drl_recipe_step_clock", as_long_as_the_recipe=True,
          step_minutes=RECIPE_STEP_MINUTES),
    # Issue 28: configs/drl.yaml with the paper's score net family, NCSN++, CPU-sized (nf 16, three
    # resolutions, one block each, no attention, no dropout: 1.11 M parameters against the U-Net's 0.79 M)
    Entry("DRL, NCSN++ score net", "configs/drl.yaml", "runs/drl_ncsnpp", minutes=15.0,
          overrides=("--model.init_args.network",
                     "{kind: ncsnpp, in_channels: 1, image_size: 32, base_channels: 16, channel_mult: [1, 2, 2], "
                     "num_res_blocks: 1, attention_resolutions: [], dropout: 0.0}"),
          step_minutes=RECIPE_STEP_MINUTES),
]
# Claim 2 (docs/claims.md) on equal encoders: PDAE's own encoder is the conv encoder of configs/pdae.yaml,
# Diff-AE's own the half-U-Net of configs/diffae.yaml; each is also run with the other's, so the pair
# (PDAE, "Diff-AE, PDAE's conv encoder") and the pair ("PDAE, Diff-AE's half-U-Net encoder", Diff-AE)
# each compare the two methods on one encoder.
PDAE_ENCODER = ("--model.init_args.encoder", "{kind: conv, channels: [32, 64, 128], num_groups: 8, num_heads: 1}")
DIFFAE_ENCODER = ("--model.init_args.encoder",
                  "{kind: halfunet, base_channels: 16, channel_mult: [1, 2, 4], num_res_blocks: 1, num_groups: 8}")
ENTRIES += [
    Entry("Diff-AE, PDAE's conv encoder", "configs/diffae.yaml", "runs/diffae_conv_encoder", overrides=PDAE_ENCODER),
    Entry("PDAE, Diff-AE's half-U-Net encoder", "configs/pdae.yaml", "runs/pdae_halfunet_encoder", kind="after_dpm",
          overrides=DIFFAE_ENCODER),
]
OPT_IN = {"DRL (recipe), step clock", "DRL, time-dependent WRN", "DRL, NCSN++ score net",
          "Diff-AE, PDAE's conv encoder", "PDAE, Diff-AE's half-U-Net encoder"}


def recipe_minutes() -> float:
    import yaml

    config = yaml.safe_load((REPO / "configs/recipes/best_cpu_hour.yaml").read_text())
    return next(float(c["init_args"]["budget_minutes"]) for c in config["trainer"]["callbacks"]
                if c["class_path"].endswith("TimeToAccuracy"))


def runs_by_seed(d: dict) -> dict[int, list[dict]]:
    """The points of every training seed of one entry, by seed: seed 0's, then those under "seeds"."""
    return {0: d["points"], **{int(k): d["seeds"][k]["points"] for k in sorted(d.get("seeds", {}), key=int)}}


def seed_runs(d: dict) -> list[list[dict]]:
    """The points of every training seed of one entry, in seed order."""
    return list(runs_by_seed(d).values())


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    import statistics

    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def shown(values: list[float]) -> str:
    """A percentage, with ± the std over seeds when there are several."""
    mean, std = spread([100 * v for v in values])
    return f"{mean:.1f} ± {std:.1f}" if len(values) > 1 else f"{mean:.1f}"


def read_points(run_dir: Path) -> list[dict]:
    path = run_dir / "time_to_accuracy.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def plot(done: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    titles = {"linear": "linear probe (all labels)", "semi_10_supervised": "10 labels per class: logistic regression",
              "semi_10_label_spreading": "10 labels per class: label spreading"}
    for ax, (metric, title) in zip(axes, titles.items(), strict=True):
        for name, d in done.items():
            points = d["points"]
            xs = [p["minutes"] for p in points]
            ys = [100 * p[f"test/{metric}"] for p in points]
            if len(points) == 1:
                ax.axhline(ys[0], linestyle="--", linewidth=1, label=name, color=f"C{list(done).index(name)}")
            else:
                ax.plot(xs, ys, marker="o", markersize=3, label=name, color=f"C{list(done).index(name)}")
        ax.set(xlabel="training minutes, 2-core CPU (from scratch)", ylabel="test accuracy (%)", title=title)
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reached(clock: float, mark: float) -> bool:
    """Whether a clock reading counts as at or before ``mark`` minutes. A point is taken when the
    clock has just passed its mark, so a reading up to 2% (or 3 s) after it still counts."""
    return clock <= 1.02 * mark + 0.05


def trained_until(points: list[dict], minutes: float) -> bool:
    """Whether a run was still training at ``minutes`` (a run that trains nothing has one point, at 0,
    and holds at every mark); each training seed by its own last point, since seeds may have had
    shorter budgets than seed 0."""
    return len(points) == 1 and points[0]["minutes"] == 0 or reached(minutes, points[-1]["minutes"])


def at_minutes(points: list[dict], minutes: float) -> dict | None:
    """The last point taken by ``minutes`` (None before the first point)."""
    before = [p for p in points if reached(p["minutes"], minutes)]
    return before[-1] if before else None


def seed_points_at(runs: dict[int, list[dict]], minutes: float) -> dict[int, dict]:
    """Each training seed's last point by ``minutes``, among the seeds still training then (a seed whose
    budget ended earlier has no point at the mark, and one not yet at its first point none either)."""
    taken = {seed: at_minutes(points, minutes) for seed, points in runs.items() if trained_until(points, minutes)}
    return {seed: point for seed, point in taken.items() if point is not None}


def image_table(done: dict) -> str:
    """Reconstruction from the inverted x_T at every point of the entries that recorded it (--reconstruction)."""
    rows = []
    for name, d in done.items():
        for p in d["points"]:
            if "test/recon_mse" in p:
                cells = [fmt.format(p[f"test/{key}"]) if f"test/{key}" in p else "-"
                         for key, (_, fmt) in IMAGE_COLUMNS.items()]
                rows.append(f"| {name} | {p['minutes']:.1f} ({p['step']}) | " + " | ".join(cells) + " |")
    if not rows:
        return ""
    head = "| codes | minutes (steps) | " + " | ".join(label for label, _ in IMAGE_COLUMNS.values()) + " |"
    return ("\n## Reconstruction from the inverted x_T (test, pixels in [0, 1]) at each point\n\n" + head + "\n"
            + "|---|---:|" + "---:|" * len(IMAGE_COLUMNS) + "\n" + "\n".join(rows) + "\n")


def write_results(out: Path, settings: dict, done: dict, keep: Path | None = None) -> str:
    """Write OUT/results.{json,md} and the figure; ``keep``: a second copy of the points, to commit."""
    done = {**{e.name: done[e.name] for e in ENTRIES if e.name in done}, **done}  # ENTRIES' order
    lines = ["| codes | seeds | minutes (steps) | " + " | ".join(f"{v} (val / test)" for v in METRICS.values())
             + " |", "|---|---:|---:|" + "---:|" * len(METRICS)]
    for name, d in done.items():
        # the seeds that trained as long as seed 0 (others may have had a shorter --budget: their points
        # count at the marks they reached, below)
        lasts = [points[-1] for points in seed_runs(d) if trained_until(points, d["points"][-1]["minutes"])]
        cells = [f"{shown([p[f'val/{m}'] for p in lasts])} / {shown([p[f'test/{m}'] for p in lasts])}"
                 for m in METRICS]
        lines.append(f"| {name} | {len(lasts)} | {lasts[0]['minutes']:.1f} ({lasts[0]['step']}) | "
                     + " | ".join(cells) + " |")
    longest = max(d["points"][-1]["minutes"] for d in done.values())
    marks = [m for m in (2, 4, 8, 15, 30, 45, 60) if reached(m, longest)]  # up to the longest run
    grid = ["| codes | " + " | ".join(f"{m} min" for m in marks) + " |", "|---|" + "---:|" * len(marks)]
    for name, d in done.items():
        cells = []
        for m in marks:
            taken = [at_minutes(points, m) for points in seed_runs(d) if trained_until(points, m)]
            taken = [p for p in taken if p is not None]
            cells.append(" / ".join(shown([p[f"test/{metric}"] for p in taken]) for metric in METRICS)
                         if taken else "-")
        grid.append(f"| {name} | " + " | ".join(cells) + " |")
    text = (f"settings: {json.dumps(settings)}\n\n## At the end of each run (mean ± std over the training seeds "
            "that trained as long as seed 0, where an entry has several; minutes and steps of seed 0)\n\n"
            + "\n".join(lines)
            + "\n\n## Test accuracy at a training time: linear / 10 per class sup. / 10 per class LS\n\n"
            "(the last point before it, over the seeds that trained that long; - before the first point or after "
            "the run ended)\n\n"
            + "\n".join(grid) + "\n" + image_table(done))
    points = json.dumps({"settings": settings, "entries": done}, indent=1) + "\n"
    for path in (out / "results.json", keep):
        if path is not None:
            path.write_text(points)
    (out / "results.md").write_text(text)
    plot(done, out / "time_to_accuracy.png")
    return text


def seed_done(done: dict, name: str, seed: int) -> bool:
    return name in done and (seed == 0 or str(seed) in done[name].get("seeds", {}))


def run_entry(entry: Entry, seed: int, args: argparse.Namespace, out: Path, done: dict, budgets: dict[str, float],
              reconstruction: str, log: Path) -> dict:
    """One entry at one training seed: its points and wall time. A run folder an interrupted call left
    with a last.ckpt resumes from it (the clock and the points are in the checkpoint)."""
    run_dir = out / seeded_run_dir(entry.run_dir, seed)
    last = run_dir / "checkpoints/last.ckpt"
    resume = ["--ckpt_path", str(last)] if last.is_file() and entry.kind != "fixed" else []
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)
    offset, budget, extra = 0.0, recipe_minutes() if entry.as_long_as_the_recipe else args.minutes, ""
    budget = budgets.get(entry.name, entry.minutes or budget)
    if entry.step_minutes:
        extra = f", step_minutes: {entry.step_minutes}"
    extra += reconstruction
    seeded = ["--seed_everything", str(seed)]
    if entry.kind == "dpm":  # a DPM's features: nothing to decode
        budget, extra = args.dpm_minutes, ", dpm_features: {layer: middle_block, t: 50}"
    elif entry.kind == "after_dpm":
        if not seed_done(done, "DPM features", seed):
            raise SystemExit(f"PDAE starts from the DPM: run the 'DPM features' entry (seed {seed}) first")
        dpm = done["DPM features"] if seed == 0 else done["DPM features"]["seeds"][str(seed)]
        offset = dpm["points"][-1]["minutes"]
        budget = offset + budgets.get(entry.name, args.minutes)
        # its own minutes 1, 2, 4, ... too, so its curve can be read on either clock
        # unrounded, so offset + its budget is the budget itself (one last point, not two)
        marks = sorted({*DEFAULT_MARKS, *(offset + m for m in DEFAULT_MARKS)})
        extra += f", at_minutes: {marks}"
        dpm_dir = next(e.run_dir for e in ENTRIES if e.name == "DPM features")
        dpm_checkpoint = f"{seeded_run_dir(dpm_dir, seed)}/checkpoints/last.ckpt"
        if not (out / dpm_checkpoint).is_file():  # runs/ is not committed, the record of its run is
            raise SystemExit(f"{entry.name} (seed {seed}) starts from the DPM at {out / dpm_checkpoint}, which "
                             "is not there: train it again with --redo 'DPM features' (its record is replaced)")
        seeded += ["--model.init_args.dpm_checkpoint", dpm_checkpoint]
    overrides = out / f"overrides_{run_dir.name}.yaml"
    overrides.write_text(CALLBACK.format(run_dir=run_dir, budget=budget, offset=offset, extra=extra))
    common = ["--config", str(REPO / entry.config), "--trainer.default_root_dir", str(run_dir),
              "--trainer.enable_progress_bar", "false"]
    if entry.kind == "recipe":  # the recipe's own config holds its budget and callbacks
        seconds = diffrep(["fit", *common, "--trainer.logger", "false", *seeded, *resume], out, log)
    elif entry.kind == "fixed":
        seconds = diffrep(["test", *common, "--config", str(overrides)], out, log)
    else:
        seconds = diffrep(["fit", *common, *entry.overrides, "--config", str(overrides),
                           "--trainer.precision", args.precision, *seeded, *resume], out, log)
    points = read_points(run_dir)
    if not points:
        raise SystemExit(f"{entry.name}, seed {seed}: no time-to-accuracy points in {run_dir}; see {log}")
    if entry.kind == "recipe":
        budget = recipe_minutes()
    from official_speed import machine  # seeds may train on different machines: the record says which

    # the entry's own budget: --minutes in the settings is only the default (the recipe-long entries run 60)
    return {"points": points, "wall_s": round(seconds), "seed": seed, "machine": machine(),
            **({} if entry.kind == "fixed" else {"budget_minutes": budget})}


def entry_budgets(given: list[str], parser: argparse.ArgumentParser) -> dict[str, float]:
    """--budget NAME=MINUTES ... as {name: minutes}; an unknown name or a bad number ends with exit 2."""
    names, budgets = {e.name for e in ENTRIES}, {}
    for item in given:
        name, _, minutes = item.rpartition("=")
        try:
            budgets[name] = float(minutes)
        except ValueError:
            parser.error(f"--budget takes NAME=MINUTES, got {item!r}")
        if name not in names:
            parser.error(f"--budget: no entry named {name!r}; the entries: {', '.join(sorted(names))}")
        if budgets[name] <= 0:
            parser.error(f"--budget {item!r}: the minutes must be positive")
    return budgets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0, help="training budget of each learner")
    parser.add_argument("--dpm-minutes", type=float, default=10.0, help="training budget of the DPM")
    parser.add_argument("--out", type=Path, default=REPO / "runs/time_to_accuracy")
    parser.add_argument("--only", nargs="*", help="names of entries to run (default: all)")
    parser.add_argument("--redo", nargs="*", default=[], help="names of finished entries to run again")
    parser.add_argument("--precision", default="bf16-mixed",
                        help="of every trained entry, so all share bf16's speed-up (the recipe's own is bf16-mixed)")
    parser.add_argument("--table-only", action="store_true", help="rewrite results.md from results.json")
    parser.add_argument("--budget", nargs="*", default=[], metavar="NAME=MINUTES",
                        help="an entry's own training budget in place of --minutes (PDAE's counts its own minutes)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="training seeds 0..N-1 of every entry that learns (tables: mean ± std over them)")
    parser.add_argument("--reconstruction", action="store_true",
                        help="also reconstruction MSE / SSIM / rFID from the inverted x_T at each point")
    parser.add_argument("--fid-weights", type=Path, default=REPO / "runs/fid/fashion_mnist_classifier.pt",
                        help="the rFID's diffrep-classifier features (make fid-extractor)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = {"minutes": args.minutes, "dpm_minutes": args.dpm_minutes, "precision": args.precision}
    reconstruction = ""
    if args.reconstruction:
        if not args.fid_weights.is_file():
            parser.exit(2, f"error: --fid-weights {args.fid_weights} not found; run `make fid-extractor` "
                           f"(python -m diffrep.evaluation.extractor --out {args.fid_weights})\n")
        settings["reconstruction"] = RECONSTRUCTION
        reconstruction = ", reconstruction: " + json.dumps({**RECONSTRUCTION, "fid_weights": str(args.fid_weights)})
    keep = REPO / "benchmarks/results" / f"time_to_accuracy_{out.name}.json"  # runs/ is not committed
    stored = out / "results.json" if (out / "results.json").is_file() else keep  # a fresh clone has the copy
    previous = json.loads(stored.read_text()) if stored.is_file() else {}
    done = previous.get("entries", {}) if previous.get("settings") == settings else {}
    if args.table_only:
        if not done:  # the table is of one run's settings; other settings name no results
            parser.exit(2, f"error: {stored} holds no results for the settings {settings}; pass the ones its "
                           f"run used: {previous.get('settings')} (--minutes, --dpm-minutes, --precision, "
                           "--reconstruction)\n")
        print(write_results(out, settings, done, keep))
        return
    if args.seeds < 1:
        parser.error(f"--seeds takes the number of training seeds (>= 1), got {args.seeds}")
    budgets = entry_budgets(args.budget, parser)
    log = out / "time_to_accuracy.log"
    for entry in ENTRIES:
        chosen = args.only or []
        if (args.only and entry.name not in chosen) or (entry.name in OPT_IN and entry.name not in chosen):
            continue
        if entry.name in args.redo:
            done.pop(entry.name, None)
            for seed in range(args.seeds):
                shutil.rmtree(out / seeded_run_dir(entry.run_dir, seed), ignore_errors=True)
        for seed in range(1 if entry.kind == "fixed" else args.seeds):  # nothing trains: one seed is all
            if seed_done(done, entry.name, seed):
                print(f"{entry.name}, seed {seed}: done before (results.json), skipped", flush=True)
                continue
            run = run_entry(entry, seed, args, out, done, budgets, reconstruction, log)
            if seed == 0:
                done[entry.name] = run
            else:
                done[entry.name].setdefault("seeds", {})[str(seed)] = run
            write_results(out, settings, done, keep)
            print(f"{entry.name}, seed {seed}: {run['wall_s'] / 60:.1f} min", flush=True)
    print(write_results(out, settings, done, keep))


if __name__ == "__main__":
    main()
