"""Experiments behind docs/claims.md: each tests one claim of the PDAE or DRL paper on the CPU.

    python benchmarks/claims.py time-sampler --data digits --steps 4000 [--seeds 3]
    python benchmarks/claims.py time-sampler --data fashion_mnist --steps 3000 [--seeds 3]
    python benchmarks/claims.py pdae-gap --pdae runs/pdae/checkpoints/last.ckpt
    python benchmarks/claims.py downstream        # after make compare-semi
    python benchmarks/claims.py time-code         # after the claim-4 hour (benchmarks/time_to_accuracy.py)
    python benchmarks/claims.py time-code-seeds   # after the claim-4 seeds (15 step-clock minutes each)
    python benchmarks/claims.py efficiency        # after the claim-2 runs (benchmarks/time_to_accuracy.py)
    python benchmarks/claims.py code-alone --entries "Diff-AE, PDAE's conv encoder"   # their last checkpoints
    python benchmarks/claims.py laplacenet        # trains what it needs; resumes; ~20 min per run

``pdae-gap`` (PDAE, Lin et al. 2022: "the forward process loses information, so a pre-trained DPM
cannot recover x0 from x_t; the learned mean shift fills the gap"): on 500 Fashion-MNIST test
images, x_t = q_sample(x0, t, eps) for t from 50 to 999, and the one-call estimate of x0 from x_t
(the posterior mean a DDIM step moves towards) by the frozen DPM alone and by PDAE with the
image's code z (eps_theta - sqrt(1 - abar_t) G, the sampler's form); MSE against x0, pixels in
[0, 1]. Writes benchmarks/results/claims_pdae_gap.json and docs/claims_pdae_gap.png.

``time-sampler`` (DRL, Mittal et al. 2023, Figure 2: "the time sampler controls the level of
detail in the code"): DRL with a 2-D code trained twice from configs/drl.yaml, once with the
uniform time sampler and once with the high-noise one, same seed, steps and everything else.
Then, on the test split: 20-NN accuracy of the 2-D codes (Euclidean, standardised codes; the
class structure a 2-D code keeps) and the linear probe; reconstruction MSE decoded from the
image's own inverted x_T and from random x_T (pixels in [0, 1]; what the code alone carries of
the image: lower means more detail); a figure with both codes' scatter plots and the images
decoded from an 8x8 grid of codes over the codes' range from one fixed x_T. Nothing is tuned: the
two samplers are the paper's, and the numbers are read once. ``--seeds N`` adds training seeds 1..N-1
of both samplers (seed 0 is the figure's run, read from the record when it holds it; seeds already in
the record are kept, not trained again) and judges high_noise minus uniform on each measure against
the spread over seeds, as claim 5's margins. Writes benchmarks/results/claims_time_sampler_<data>.json
and docs/claims_time_sampler_<data>.png.

``downstream`` (DRL, Figures 4-5: "DRL/VDRL against AE, VAE, SimCLR and SimCLR-Gauss on downstream
tasks"): the linear and MLP probes (all labels), the SVMs on 100 and 1000 labels and Poisson learning
with 10 labels per class of those entries, read from `make compare-semi`'s results.json (equal training
steps; nothing trains here); with `compare.py --semi --seeds N`, each the mean over the training seeds
with their std, and each DRL/VDRL-baseline margin judged against the spread of the difference.
Writes benchmarks/results/claims_downstream.json and docs/claims_downstream.png.

``efficiency`` (PDAE: "PDAE trains more efficiently than Diff-AE and performs better"): reads the
points of ``python benchmarks/time_to_accuracy.py --out runs/time_to_accuracy_claim2 --only "DPM features"
PDAE Diff-AE --minutes 60 --reconstruction`` (the DPM for 10 minutes, then PDAE on it for 60, and
Diff-AE from scratch for 60; at each point the probes, and MSE / SSIM / rFID of 500 test images
decoded from their inverted x_T) and sets them side by side on one clock, both ways: PDAE's own
minutes (the DPM already exists) and with its DPM's minutes added. Nothing trains here. Writes
benchmarks/results/claims_efficiency.json and docs/claims_efficiency.png.

``code-alone`` (the same claim, reconstruction): each named claim-2 entry's last checkpoint (under
--runs, runs/time_to_accuracy_claim2 by default), its first 500 test images encoded and decoded with 25
DDIM steps from their own inverted x_T and from fresh noise x_T (what the code alone carries), fp32,
MSE / PSNR / SSIM on pixels in [0, 1] (``diffrep.evaluation.reconstruction``, as ``diffrep test``'s
ReconstructionMetrics). Adds each entry to benchmarks/results/claims_efficiency_code_alone.json,
keeping the entries measured before.

``time-code`` (DRL, Proposition 2.1 and the LaplaceNet result: "the infinite-dimensional code
E(x0, t) beats a static code on semi-supervised classification"): the time-dependent WRN trained
for the recipe's hour (``python benchmarks/time_to_accuracy.py --out runs/time_to_accuracy_claim4
--only "DRL, time-dependent WRN"``), encoded at each t of a grid and at the five default times
joined; the linear probe and 10 labels per class (logistic regression, label spreading, Poisson
learning; 3 draws) on 10000 training, 5000 validation and 5000 test codes. The t is chosen on
validation. Writes benchmarks/results/claims_time_code.json.

``time-code-seeds`` (the same claim on frozen codes, over training seeds): reads ``python
benchmarks/time_to_accuracy.py --out runs/time_to_accuracy_claim4_seeds --precision 32-true --seeds 3 --only
"DRL (recipe), step clock" "DRL, time-dependent WRN" --budget ...=15`` (both on the recipe's step clock, 15
minutes = 3047 steps, fp32) and sets E(x0, t) against the static code at the mark: each side's test linear /
10 labels sup. / LS as mean ± std over its seeds, the margin judged against the spread of the difference as
claim 5's. Nothing trains here. Writes benchmarks/results/claims_time_code_seeds.json.

``laplacenet`` (DRL, the same claim with the paper's protocol: LaplaceNet fine-tuning of the encoder,
korabs-x/representation_score_based's LaplaceNet/): configs/laplacenet.yaml (10 labels per class,
the official schedule, graph pseudo-labels, strong augmentation) from each start of
LAPLACENET_STARTS: DRL's E(x0, t) (configs/drl_time_wrn.yaml), a random WRN, the static-code
recipe's encoder (configs/drl.yaml's conv encoder) and the autoencoder (the best non-diffusion
baseline of the label-scarce tables, tied with the VAE). Each encoder is trained for
--encoder-steps first if its run folder has no checkpoint; each LaplaceNet run gets --max-epochs
(an epoch budget: the same steps for every run, whatever else the CPU does; --minutes adds a wall
cap), for every label draw (--draws) and training seed (--seeds), then
further seeds (--top-seeds) for the --top starts with the best validation accuracy; an
interrupted run resumes from its last.ckpt, a finished one is read from its result.json or from the
committed record (same budget), which keeps the runs of earlier calls: a later call may add seeds. Test
accuracy after the run (diffrep test), and the validation accuracy of every epoch against wall
minutes, and each start's paired difference to DRL's E(x0, t) (same draw, training seed 0), and for a draw
run at several training seeds the spread over seeds and the difference paired by seed (``over_seeds``). ``--report``
tabulates the finished runs without training (the rest listed as pending). Writes
benchmarks/results/claims_laplacenet.json and docs/claims_laplacenet.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLERS = ("uniform", "high_noise")
DATA = {
    "digits": ["--data", str(REPO / "configs/data/digits.yaml"), "--model.init_args.network.image_size", "16",
               "--model.init_args.network.channel_mult", "[1, 2]"],
    "fashion_mnist": ["--data", str(REPO / "configs/data/fashion_mnist.yaml")],
}


def train(data: str, sampler: str, steps: int, root: Path, seed: int = 0) -> Path:
    """DRL with a 2-D code through `diffrep fit` (in this process) at training seed ``seed``; returns its
    last.ckpt. A finished run is kept; one interrupted after a periodic save (every 500 steps) continues
    from its last.ckpt."""
    from diffrep.cli import main

    last = root / "checkpoints/last.ckpt"
    resume = []
    if last.is_file():
        if load_step(last) >= steps:
            return last
        resume = ["--ckpt_path", str(last)]
    main(["fit", "--config", str(REPO / "configs/drl.yaml"), *DATA[data], *resume,
          "--model.init_args.code.latent_dim", "2", "--model.init_args.objective.time_sampler", sampler,
          "--trainer.max_steps", str(steps), "--trainer.logger", "false", "--evaluate", "false",
          "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
          "--trainer.default_root_dir", str(root), *(["--seed_everything", str(seed)] if seed else [])])
    return last


def knn_euclidean(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                  k: int = 20) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    from diffrep.evaluation.linear import Standardiser

    scale = Standardiser.fit(train_x)
    model = KNeighborsClassifier(n_neighbors=k).fit(scale(train_x).numpy(), train_y.numpy())
    return float((model.predict(scale(test_x).numpy()) == test_y.numpy()).mean())


def evaluate(ckpt: Path, data: str, num_images: int = 128, steps: int = 50) -> tuple[dict, object, tuple]:
    from diffrep.datamodules import DigitsDataModule, FashionMNISTDataModule
    from diffrep.evaluation.features import encode_split
    from diffrep.evaluation.probes import linear_probe
    from diffrep.evaluation.reconstruction import image_errors
    from diffrep.lightning_modules.loading import load_trained

    model = load_trained(ckpt)
    dm = DigitsDataModule(image_size=16) if data == "digits" else FashionMNISTDataModule()
    dm.setup()
    train = encode_split(model, dm.evaluation_split("train"), 10000)
    test = encode_split(model, dm.splits["test"], 5000)
    x0 = torch.stack([dm.splits["test"][i][0] for i in range(num_images)])
    torch.manual_seed(0)
    inverted = image_errors(model.reconstruct(x0, steps), x0)
    random_xt = image_errors(model.reconstruct_from_noise(x0, steps, torch.Generator().manual_seed(0)), x0)
    result = {
        "knn20_accuracy": knn_euclidean(*train, *test),
        "linear_accuracy": linear_probe(*train, *test)["accuracy"],
        "mse_inverted_xT": float(inverted["mse"].mean()),
        "mse_random_xT": float(random_xt["mse"].mean()),
        "ssim_random_xT": float(random_xt["ssim"].mean()),
    }
    return result, model, test


def decoded_grid(model, codes: torch.Tensor, n: int = 8, steps: int = 50) -> torch.Tensor:
    """Images decoded from an n x n grid of codes over the 2nd-98th percentile range, one fixed x_T."""
    lo, hi = torch.quantile(codes, 0.02, dim=0), torch.quantile(codes, 0.98, dim=0)
    a, b = torch.meshgrid(torch.linspace(0, 1, n), torch.linspace(1, 0, n), indexing="xy")
    z = lo + torch.stack([a.flatten(), b.flatten()], 1) * (hi - lo)
    x_T = model.noise(1, torch.Generator().manual_seed(0)).expand(n * n, -1, -1, -1)
    return model.generate(z, x_T, steps)


def figure(data: str, panels: dict, path: Path, class_names: list[str] | None = None) -> None:
    from matplotlib.figure import Figure
    from torchvision.utils import make_grid

    fig = Figure(figsize=(10, 10), dpi=100)
    axes = fig.subplots(2, 2)
    for col, (sampler, (codes, labels, grid, result)) in enumerate(panels.items()):
        ax = axes[0, col]
        scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3)
        ax.set_title(f"{sampler} t: 2-D codes of test images\n20-NN {100 * result['knn20_accuracy']:.1f}%, "
                     f"MSE from random x_T {result['mse_random_xT']:.4f}", fontsize=9)
        ax.set(xlabel="code dimension 1", ylabel="code dimension 2")
        handles, _ = scatter.legend_elements()
        names = class_names or [str(c) for c in range(len(handles))]
        ax.legend(handles, names[: len(handles)], title="class", fontsize=6, title_fontsize=7, markerscale=0.8,
                  loc="best")
        image = make_grid((grid.float().cpu() + 1) / 2, nrow=8, padding=1, pad_value=1).clamp(0, 1)
        axes[1, col].imshow(image.permute(1, 2, 0).numpy())
        axes[1, col].set_title(f"{sampler} t: decoded from an 8x8 grid of codes (one x_T)", fontsize=9)
        axes[1, col].axis("off")
    fig.suptitle(f"DRL, 2-D code on {data}: the time sampler sets what the code keeps", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")


def save_panels(path: Path, panels: dict) -> None:
    """What the figure shows, kept beside the record (codes, labels, decoded grid per sampler), so
    ``--replot`` redraws it without training."""
    import numpy as np

    arrays = {}
    for sampler, (codes, labels, grid, _) in panels.items():
        arrays[f"{sampler}_codes"], arrays[f"{sampler}_labels"] = np.asarray(codes, np.float32), np.asarray(labels)
        arrays[f"{sampler}_grid"] = grid.float().cpu().numpy().astype(np.float16)
    np.savez_compressed(path, **arrays)


def load_panels(path: Path, results: dict) -> dict:
    import numpy as np

    if not path.is_file():
        raise SystemExit(f"{path} not found: run `python benchmarks/claims.py time-sampler` once without --replot")
    saved = np.load(path)
    return {s: (saved[f"{s}_codes"], saved[f"{s}_labels"], torch.from_numpy(saved[f"{s}_grid"].astype(np.float32)),
                results[s]) for s in SAMPLERS}


def time_sampler(args: argparse.Namespace) -> None:
    json_path = Path(args.results_dir) / f"claims_time_sampler_{args.data}.json"
    figure_path = Path(args.figure_dir) / f"claims_time_sampler_{args.data}.png"
    panels_path = Path(args.results_dir) / f"claims_time_sampler_{args.data}_panels.npz"
    from diffrep.datamodules import FashionMNISTDataModule

    names = list(FashionMNISTDataModule.class_names) if args.data == "fashion_mnist" else None
    if args.replot:
        figure(args.data, load_panels(panels_path, json.loads(json_path.read_text())["results"]), figure_path, names)
        print(f"redrew {figure_path} from {panels_path}")
        return
    out = Path(args.out or f"runs/claims/time_sampler_{args.data}")
    earlier = json.loads(json_path.read_text()) if json_path.is_file() else {}
    same = (earlier.get("steps"), earlier.get("decode_steps")) == (args.steps, args.decode_steps)
    stored = earlier.get("seeds", {}) if same else {}  # runs/ is not committed: a later call adds seeds to these
    results, panels = {}, {}
    if args.seeds > 1 and same and panels_path.is_file() and set(earlier.get("results", {})) == set(SAMPLERS):
        results, panels = earlier["results"], load_panels(panels_path, earlier["results"])  # seed 0 is stored
    for sampler in (s for s in SAMPLERS if s not in results):
        start = time.perf_counter()
        ckpt = train(args.data, sampler, args.steps, out / sampler)
        trained = time.perf_counter() - start
        result, model, (codes, labels) = evaluate(ckpt, args.data, steps=args.decode_steps)
        result["seconds"] = round(trained, 1)
        results[sampler] = result
        panels[sampler] = (codes.numpy(), labels.numpy(), decoded_grid(model, codes, steps=args.decode_steps), result)
        print(sampler, json.dumps(result), flush=True)
    seeds = {sampler: {"0": results[sampler]} for sampler in SAMPLERS}
    for seed in range(1, args.seeds):
        for sampler in SAMPLERS:
            if str(seed) in stored.get(sampler, {}):
                seeds[sampler][str(seed)] = stored[sampler][str(seed)]
                continue
            ckpt = train(args.data, sampler, args.steps, out / f"{sampler}_seed{seed}", seed=seed)
            seeds[sampler][str(seed)] = evaluate(ckpt, args.data, steps=args.decode_steps)[0]
            print(sampler, f"seed {seed}", json.dumps(seeds[sampler][str(seed)]), flush=True)
    for sampler, runs in stored.items():  # seeds of an earlier, longer call are kept
        seeds[sampler] = {**runs, **seeds[sampler]}
    record = {"claim": "DRL: the time sampler controls the level of detail in the code", "data": args.data,
              "steps": args.steps, "decode_steps": args.decode_steps, "latent_dim": 2, "config": "configs/drl.yaml",
              "split": "test",
              "date": time.strftime("%Y-%m-%d"), "results": results, **time_sampler_over_seeds(seeds)}
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    save_panels(panels_path, panels)
    figure(args.data, panels, figure_path, names)
    for metric, margin in record["margins"].items():
        print(f"high_noise - uniform, {metric}: {margin_cell(margin)} (training seeds: {len(seeds['uniform'])})")
    print(f"wrote {json_path} and {figure_path}")


TIME_SAMPLER_METRICS = ("knn20_accuracy", "linear_accuracy", "mse_random_xT", "ssim_random_xT")


def time_sampler_over_seeds(seeds: dict[str, dict[str, dict]]) -> dict:
    """Each sampler's measures over its training seeds (seed 0 is the figure's run), and high_noise minus
    uniform judged against the spread over seeds as claim 5's margins (no verdict with one seed)."""
    cells = {sampler: {metric: seed_cell([runs[k][metric] for k in sorted(runs, key=int)])
                       for metric in TIME_SAMPLER_METRICS} for sampler, runs in seeds.items()}
    margins = {metric: downstream_margin(cells["high_noise"][metric], cells["uniform"][metric])
               for metric in TIME_SAMPLER_METRICS}
    return {"seeds": seeds, "over_seeds": cells, "margins": margins}


def pdae_gap(args: argparse.Namespace) -> None:
    from matplotlib.figure import Figure

    from diffrep.datamodules import FashionMNISTDataModule
    from diffrep.diffusion.process import q_sample, x0_from_eps
    from diffrep.lightning_modules.loading import load_pdae

    model = load_pdae(args.pdae)
    dm = FashionMNISTDataModule(image_size=model.image_shape[-1])
    dm.setup()
    x0 = torch.stack([dm.splits["test"][i][0] for i in range(args.num_images)])
    times = [50, 100, 200, 300, 500, 700, 900, 999]
    rows = []
    with torch.no_grad():
        z = model.encode(x0)
        for t_value in times:
            t = torch.full((len(x0),), t_value, dtype=torch.long)
            eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t_value))
            x_t = q_sample(model.schedule, x0, t, eps)
            row = {"t": t_value}
            for name, eps_fn in (("dpm", model.code_eps_fn(None)), ("pdae", model.guided_eps_fn(z))):
                with model.inference():
                    x0_hat = x0_from_eps(model.schedule, x_t, t, eps_fn(x_t, t)).clamp(-1, 1)
                row[f"mse_{name}"] = float(((x0_hat - x0) / 2).pow(2).mean())
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {"claim": "PDAE: the forward process loses information; the learned mean shift fills the gap",
              "checkpoint": str(args.pdae), "images": len(x0), "split": "test", "pixel_range": [0, 1],
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    (Path(args.results_dir) / "claims_pdae_gap.json").write_text(json.dumps(record, indent=2) + "\n")
    fig = Figure(figsize=(5.5, 3.6), dpi=110)
    ax = fig.subplots()
    for name, label in (("dpm", "frozen DPM alone: E[x0 | x_t]"), ("pdae", "PDAE: E[x0 | x_t, z]")):
        ax.plot(times, [r[f"mse_{name}"] for r in rows], marker="o", label=label)
    ax.set(xlabel="t (of 1000)", ylabel="MSE of the x0 estimate", yscale="log",
           title="What x_t has lost, and what the code gives back")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(Path(args.figure_dir) / "claims_pdae_gap.png", bbox_inches="tight")
    print(f"wrote claims_pdae_gap.json to {args.results_dir} and its figure to {args.figure_dir}")


#: the entries of `make compare-semi` in claim 5's figure, DRL's and VDRL's first, then the baselines
DOWNSTREAM_ENTRIES = ("DRL, uniform t", "DRL, high-noise t", "VDRL", "autoencoder", "VAE", "SimCLR", "SimCLR-Gauss")
DOWNSTREAM_METRICS = {"probe/linear_accuracy": "linear probe, all labels", "downstream/mlp": "MLP probe, all labels",
                      "downstream/svm_100": "SVM, 100 labels", "downstream/svm_1000": "SVM, 1000 labels",
                      "semi/poisson_10": "Poisson learning, 10 per class"}
DOWNSTREAM_METHODS = ("DRL, uniform t", "DRL, high-noise t", "VDRL")  # the claim's; the rest are its baselines


def downstream_cell(entry: dict, key: str) -> dict | None:
    """Over the entry's training seeds (compare.py's record): the mean and sample std (0 with one seed) of the
    metric's mean over label draws (or of the metric itself, for a probe without draws: the linear probe),
    the per-seed values, and the label draws' std averaged over the seeds (the spread a single seed's table
    shows); None where a seed's report lacks the metric."""
    from compare import seed_reports

    metrics = [r["metrics"] for r in seed_reports(entry)]
    values = [m.get(f"{key}_mean", m.get(key)) for m in metrics]
    if any(v is None for v in values):
        return None
    draw_stds = [m.get(f"{key}_std") for m in metrics]
    return {**seed_cell([float(v) for v in values]),
            "draw_std": float(np.mean(draw_stds)) if all(d is not None for d in draw_stds) else None}


def seed_cell(values: list[float]) -> dict:
    """One measure over training seeds: the mean, the sample std (0 with one seed) and the per-seed values."""
    return {"mean": float(np.mean(values)), "seed_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "seeds": values}


def seed_cell_text(cell: dict | None) -> str:
    """A cell as the claims page writes it: "81.1 ± 0.5" (%), "-" where the measure is missing."""
    return "-" if cell is None else f"{100 * cell['mean']:.1f} ± {100 * cell['seed_std']:.1f}"


def downstream_margin(method: dict, baseline: dict) -> dict:
    """method minus baseline, and the spread of that difference for one run of each (the seed stds added in
    quadrature); "ahead" / "behind" only when the margin exceeds that spread, else "within the spread". A side
    with one training seed has no spread to judge against: no verdict (its seed std of 0 is not a spread)."""
    margin = method["mean"] - baseline["mean"]
    if min(len(method["seeds"]), len(baseline["seeds"])) < 2:
        return {"margin": margin, "spread": None, "verdict": "one training seed: no verdict"}
    spread = float(np.hypot(method["seed_std"], baseline["seed_std"]))
    verdict = "within the spread" if abs(margin) <= spread else ("ahead" if margin > 0 else "behind")
    return {"margin": margin, "spread": spread, "verdict": verdict}


def downstream_record(results: dict, source: str) -> dict:
    entries, settings = results["entries"], results["settings"]
    names = [n for n in DOWNSTREAM_ENTRIES if n in entries and entries[n].get("report")]
    if not names:
        raise SystemExit(f"{source} holds none of {', '.join(DOWNSTREAM_ENTRIES)}; run make compare-semi")
    rows = {n: {label: downstream_cell(entries[n], key) for key, label in DOWNSTREAM_METRICS.items()} for n in names}
    seeds = {n: len(next(c for c in rows[n].values() if c)["seeds"]) for n in names}
    margins = {f"{m} - {b}": {label: downstream_margin(rows[m][label], rows[b][label])
                              for label in DOWNSTREAM_METRICS.values() if rows[m][label] and rows[b][label]}
               for m in names if m in DOWNSTREAM_METHODS for b in names if b not in DOWNSTREAM_METHODS}
    return {"results": source, "settings": settings, "training_seeds": seeds, "rows": rows, "margins": margins}


def downstream(args: argparse.Namespace) -> None:
    """Claim 5 in the form of the DRL paper's Figures 4-5: downstream accuracy of DRL/VDRL against
    AE, VAE, SimCLR and SimCLR-Gauss, read from `make compare-semi`'s results.json (no training): each
    cell the mean over training seeds with their std, and every method-baseline margin against its spread."""
    from matplotlib.figure import Figure

    record_path = Path(args.results_dir) / "claims_downstream.json"
    if args.replot:  # the stored record alone: runs/compare_semi is not committed
        record = json.loads(record_path.read_text())
    else:
        record = downstream_record(json.loads(Path(args.results).read_text()), str(args.results))
    rows, names = record["rows"], list(record["rows"])
    fig = Figure(figsize=(15, 3.2), layout="constrained")
    axes = fig.subplots(1, len(DOWNSTREAM_METRICS), sharey=True)
    for ax, label in zip(axes, DOWNSTREAM_METRICS.values(), strict=True):
        if all(rows[n].get(label) is None for n in names):  # a run made before this probe was in the suite
            ax.set(title=f"{label}: not in this run", xlim=(0, 100), xlabel="test accuracy (%), axis from 0")
            continue
        cells = [rows[n].get(label) or {"mean": 0.0, "seed_std": 0.0} for n in names]
        values = [100 * c["mean"] for c in cells]
        colours = ["tab:blue" if n in DOWNSTREAM_METHODS else "tab:gray" for n in names]
        bars = ax.barh(range(len(names)), values, xerr=[100 * c["seed_std"] for c in cells], color=colours)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=2, fontsize=7)
        ax.set(title=label, xlabel="test accuracy (%), axis from 0", xlim=(0, 100))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    seeds = sorted(set(record["training_seeds"].values()))
    settings = record["settings"]
    fig.suptitle(f"Fashion-MNIST, {settings.get('steps', '?')} training steps each, "
                 f"{settings.get('precision', 'each config its precision')} (compare.py --semi); mean over "
                 f"{'/'.join(map(str, seeds))} training seeds (SVMs and Poisson: each seed the mean of 3 label draws), "
                 "error bars: std over the training seeds", fontsize=9)
    record_path.write_text(json.dumps(record, indent=1))
    fig.savefig(Path(args.figure_dir) / "claims_downstream.png", dpi=120)
    print(downstream_tables(record))
    print(f"wrote claims_downstream.json to {args.results_dir} and its figure to {args.figure_dir}")


def downstream_tables(record: dict) -> str:
    """The record as Markdown: accuracy (mean ± std over training seeds, %) per entry and measure, then each
    DRL/VDRL-baseline margin with its spread and verdict (points)."""
    labels = list(DOWNSTREAM_METRICS.values())
    lines = ["| codes | seeds | " + " | ".join(labels) + " |", "|---|---:|" + "---:|" * len(labels)]
    lines += [f"| {n} | {record['training_seeds'][n]} | "
              + " | ".join(seed_cell_text(row.get(label)) for label in labels) + " |"
              for n, row in record["rows"].items()]
    lines += ["", "| margin (points) | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for pair, margins in record["margins"].items():
        lines.append(f"| {pair} | " + " | ".join(margin_cell(margins.get(label)) for label in labels) + " |")
    return "\n".join(lines)


def margin_cell(margin: dict | None) -> str:
    """One margin as the claims page writes it: "+1.0 ± 2.8, within the spread" (no ± without a spread)."""
    if margin is None:
        return "-"
    spread = "" if margin["spread"] is None else f" ± {100 * margin['spread']:.1f}"
    return f"{100 * margin['margin']:+.1f}{spread}, {margin['verdict']}"


# Claim 4 on frozen codes over training seeds: E(x0, t) against the recipe's static code, both on the step clock
TIME_CODE_SEEDS = {"static": "DRL (recipe), step clock", "time-dependent": "DRL, time-dependent WRN"}
TIME_CODE_METRICS = {"test/linear": "linear", "test/semi_10_supervised": "10/class sup.",
                     "test/semi_10_label_spreading": "10/class LS"}


def time_code_seeds_record(results: dict, source: str, minutes: float) -> dict:
    """Each side's test accuracies at ``minutes`` (each training seed's last point by then, among the seeds
    that trained that long): the mean and std over seeds as claim 5's cells, and E(x0, t)'s margin over the
    static code against the spread of the difference (``downstream_margin``'s verdict rule)."""
    from time_to_accuracy import runs_by_seed, seed_points_at

    entries = results["entries"]
    missing = [name for name in TIME_CODE_SEEDS.values() if name not in entries]
    if missing:
        raise SystemExit(f"{source} holds no {missing}; run benchmarks/time_to_accuracy.py --out "
                         f"runs/time_to_accuracy_claim4_seeds --precision 32-true --seeds 3 --only "
                         f'"{TIME_CODE_SEEDS["static"]}" "{TIME_CODE_SEEDS["time-dependent"]}" --budget '
                         f'"{TIME_CODE_SEEDS["static"]}=15" "{TIME_CODE_SEEDS["time-dependent"]}=15"')
    rows = {}
    for side, name in TIME_CODE_SEEDS.items():
        points = list(seed_points_at(runs_by_seed(entries[name]), minutes).values())
        rows[side] = {label: seed_cell([p[key] for p in points])
                      for key, label in TIME_CODE_METRICS.items()} if points else {}
    margins = {label: downstream_margin(rows["time-dependent"][label], rows["static"][label])
               for label in TIME_CODE_METRICS.values() if rows["static"] and rows["time-dependent"]}
    return {"results": source, "settings": results["settings"], "minutes": minutes, "entries": TIME_CODE_SEEDS,
            "rows": rows, "margins": margins}


def time_code_seeds_table(record: dict) -> str:
    """The record as claims.md's table: each side's cells (mean ± std over seeds, %), then the margin."""
    labels = list(TIME_CODE_METRICS.values())
    lines = ["| code | seeds | " + " | ".join(labels) + " |", "|---|---:|" + "---:|" * len(labels)]
    for side, row in record["rows"].items():
        if row:
            seeds = len(next(iter(row.values()))["seeds"])
            lines.append(f"| {record['entries'][side]} | {seeds} | "
                         + " | ".join(seed_cell_text(row[label]) for label in labels) + " |")
    if record["margins"]:
        lines.append("| E(x0, t) - static (points) | | " + " | ".join(
            margin_cell(record["margins"].get(label)) for label in labels) + " |")
    return "\n".join(lines)


def time_code_seeds(args: argparse.Namespace) -> None:
    """Claim 4 on frozen codes over training seeds (nothing trains here): reads the seeded step-clock runs."""
    record = time_code_seeds_record(json.loads(Path(args.results).read_text()), str(args.results), args.minutes)
    (Path(args.results_dir) / "claims_time_code_seeds.json").write_text(json.dumps(record, indent=1))
    print(time_code_seeds_table(record))
    print(f"wrote claims_time_code_seeds.json to {args.results_dir}")


TIME_GRID = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


class CodesAt:
    """A time-dependent DRL whose ``encode`` gives the codes at ``times`` (fractions), joined."""

    def __init__(self, model, times: tuple[float, ...] | None) -> None:
        self.model, self.times = model, times

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, self.times)

    def model_device(self) -> torch.device:
        return self.model.model_device()


def time_code(args: argparse.Namespace) -> None:
    """Claim 4: the probes of E(x0, t) at each t and joined (module docstring)."""
    from diffrep.datamodules import FashionMNISTDataModule
    from diffrep.evaluation.features import encode_split
    from diffrep.evaluation.probes import linear_probe
    from diffrep.evaluation.semi_supervised import semi_supervised_accuracy
    from diffrep.lightning_modules.loading import load_trained

    model = load_trained(Path(args.ckpt))
    if not getattr(model, "time_dependent", False):
        raise SystemExit(f"{args.ckpt} is not a time-dependent DRL")
    from diffrep.datamodules import DigitsDataModule

    dm = DigitsDataModule(image_size=16) if args.data == "digits" else FashionMNISTDataModule()
    dm.setup()
    rows = {}
    for name, times in [*((f"t = {t}", (t,)) for t in TIME_GRID), ("joined (0.1 ... 0.9)", None)]:
        encoder = CodesAt(model, times)
        train = encode_split(encoder, dm.evaluation_split("train"), 10000)
        row = {}
        for split in ("val", "test"):
            held_out = encode_split(encoder, dm.evaluation_split(split), 5000)
            row[f"{split}/linear"] = linear_probe(*train, *held_out)["accuracy"]
            semi = semi_supervised_accuracy(*train, *held_out, (10,), (0, 1, 2),
                                            ("supervised", "label_spreading", "poisson"))
            row.update({f"{split}/{method}_10": per_k[10]["mean"] for method, per_k in semi.items()})
        rows[name] = row
        print(name, {k: round(100 * v, 1) for k, v in row.items()}, flush=True)
    best = {metric: max((n for n in rows if n.startswith("t =")), key=lambda n: rows[n][f"val/{metric}"])
            for metric in ("linear", "supervised_10", "label_spreading_10", "poisson_10")}
    record = {"checkpoint": str(args.ckpt), "step": load_step(Path(args.ckpt)), "rows": rows,
              "best_t_on_val": best}
    (Path(args.results_dir) / "claims_time_code.json").write_text(json.dumps(record, indent=1))
    print(f"best single t on validation: {best}; wrote claims_time_code.json to {args.results_dir}")


EFFICIENCY_PANELS = {"test/linear": "linear probe (%)", "test/semi_10_label_spreading": "10 labels per class, LS (%)",
                     "test/recon_mse": "reconstruction MSE (inverted x_T)", "test/rfid": "rFID (diffrep-classifier)"}


#: claim 2's equal-encoder controls (time_to_accuracy.py's opt-in entries), each drawn when it has run
DIFFAE_CONV = "Diff-AE, PDAE's conv encoder"
PDAE_HALFUNET = "PDAE, Diff-AE's half-U-Net encoder"


def own_minutes(pdae: dict, dpm: dict) -> dict[int, list[dict]]:
    """A PDAE entry's points per seed on its own clock: each seed's shifted back by its own DPM's minutes."""
    from time_to_accuracy import runs_by_seed

    dpms = runs_by_seed(dpm)
    return {seed: [{**p, "minutes": p["minutes"] - dpms[seed][-1]["minutes"]} for p in points]
            for seed, points in runs_by_seed(pdae).items() if seed in dpms}


def efficiency_rows(entries: dict) -> dict:
    """PDAE against Diff-AE at equal minutes, both ways: at each mark, Diff-AE's last point by then,
    PDAE's by its own minutes (the DPM exists) and PDAE's with the DPM's minutes counted; and, where
    they have run, the equal-encoder controls (Diff-AE on PDAE's conv encoder; PDAE on Diff-AE's half-U-Net
    encoder, by its own minutes). ``rows`` are training seed 0's points; ``spread``, where a curve has
    several training seeds, the mean and std over the seeds that trained until the mark."""
    from time_to_accuracy import runs_by_seed, seed_points_at, spread

    from diffrep.callbacks.time_to_accuracy import DEFAULT_MARKS

    for name in ("DPM features", "PDAE", "Diff-AE"):
        if name not in entries:
            raise SystemExit(f"the claim-2 results hold no {name!r} entry; run benchmarks/time_to_accuracy.py "
                             '--out runs/time_to_accuracy_claim2 --only "DPM features" PDAE Diff-AE --minutes 60 '
                             "--reconstruction")
    dpm = entries["DPM features"]
    seeds = {"Diff-AE": runs_by_seed(entries["Diff-AE"]), "PDAE, own minutes": own_minutes(entries["PDAE"], dpm),
             "PDAE, DPM's minutes added": runs_by_seed(entries["PDAE"])}
    if DIFFAE_CONV in entries:
        seeds[DIFFAE_CONV] = runs_by_seed(entries[DIFFAE_CONV])
    if PDAE_HALFUNET in entries:
        seeds[f"{PDAE_HALFUNET}, own minutes"] = own_minutes(entries[PDAE_HALFUNET], dpm)
    curves = {name: runs[0] for name, runs in seeds.items()}
    longest = max(p["minutes"] for c in curves.values() for p in c)
    rows, spreads = {}, {}
    for mark in (m for m in DEFAULT_MARKS if m <= longest * 1.02):
        rows[str(mark)], spreads[str(mark)] = {}, {}
        for name, runs in seeds.items():
            taken = seed_points_at(runs, mark)  # - after its end
            point = taken.get(0)
            rows[str(mark)][name] = None if point is None else {k: point.get(k) for k in ("minutes", "step",
                                                                                         *EFFICIENCY_PANELS)}
            if len(taken) > 1:
                spreads[str(mark)][name] = {"seeds": sorted(taken), **{
                    key: list(spread([p[key] for p in taken.values()])) for key in EFFICIENCY_PANELS
                    if all(key in p for p in taken.values())}}
    return {"dpm_minutes": dpm["points"][-1]["minutes"], "curves": curves,
            "seed_curves": {name: {str(seed): points for seed, points in runs.items() if seed}
                            for name, runs in seeds.items() if len(runs) > 1},
            "rows": rows, "spread": {mark: row for mark, row in spreads.items() if row}}


def efficiency(args: argparse.Namespace) -> None:
    """Claim 2: PDAE on an existing DPM against Diff-AE from scratch on one clock (module docstring)."""
    from matplotlib.figure import Figure

    from diffrep.callbacks.time_to_accuracy import is_image_metric

    results = json.loads(Path(args.results).read_text())
    summary = efficiency_rows(results["entries"])
    fig = Figure(figsize=(15, 3.6), layout="constrained")
    axes = fig.subplots(1, len(EFFICIENCY_PANELS))
    styles = {"Diff-AE": dict(color="tab:red"), "PDAE, own minutes": dict(color="tab:blue", linestyle="--"),
              "PDAE, DPM's minutes added": dict(color="tab:green"), DIFFAE_CONV: dict(color="tab:orange"),
              f"{PDAE_HALFUNET}, own minutes": dict(color="tab:purple", linestyle="--")}
    for ax, (key, label) in zip(axes, EFFICIENCY_PANELS.items(), strict=True):
        scale = 1 if is_image_metric(key) else 100
        for name, points in summary["curves"].items():
            shown = [p for p in points if key in p]
            ax.plot([p["minutes"] for p in shown], [scale * p[key] for p in shown], marker="o", markersize=3,
                    label=name, **styles[name])
            for other in summary["seed_curves"].get(name, {}).values():  # further training seeds: thin, unlabelled
                shown = [p for p in other if key in p]
                ax.plot([p["minutes"] for p in shown], [scale * p[key] for p in shown], marker=".",
                        markersize=2, linewidth=0.7, alpha=0.6, **styles[name])
        ax.set(xlabel="training minutes, 2-core CPU", title=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    controls = " and the equal-encoder controls" if len(summary["curves"]) > 3 else ""
    controls += "; thin lines: further training seeds" if summary["seed_curves"] else ""
    fig.suptitle(f"Fashion-MNIST test split: PDAE on a {summary['dpm_minutes']:.0f}-minute DPM against Diff-AE "
                 f"from scratch{controls} (benchmarks/time_to_accuracy.py --reconstruction)", fontsize=9)
    record = {"results": str(args.results), "settings": results["settings"], **summary}
    (Path(args.results_dir) / "claims_efficiency.json").write_text(json.dumps(record, indent=1))
    fig.savefig(Path(args.figure_dir) / "claims_efficiency.png", dpi=120)
    for mark, row in summary["rows"].items():
        cells = [f"{n}: " + ("-" if p is None else " / ".join(
            f"{(1 if is_image_metric(k) else 100) * p[k]:.4g}" if p.get(k) is not None else "-"
            for k in EFFICIENCY_PANELS)) for n, p in row.items()]
        print(f"{mark:>3} min | " + " | ".join(cells))
    for mark, row in summary["spread"].items():
        cells = [f"{n} ({len(r['seeds'])} seeds): " + " / ".join(
            f"{(1 if is_image_metric(k) else 100) * r[k][0]:.4g} ± {(1 if is_image_metric(k) else 100) * r[k][1]:.2g}"
            if k in r else "-" for k in EFFICIENCY_PANELS) for n, r in row.items()]
        print(f"{mark:>3} min, mean ± std over training seeds | " + " | ".join(cells))
    print(f"wrote claims_efficiency.json to {args.results_dir} and its figure to {args.figure_dir}")


# Claim 4 with the paper's protocol: LaplaceNet fine-tuning from each start (entry -> the encoder's training
# command and run folder; None: a random WRN). Encoders trained for --encoder-steps, each LaplaceNet run for
# --max-epochs (an epoch budget; configs/laplacenet.yaml otherwise).
LAPLACENET_STARTS: dict[str, tuple[str, list[str], str] | None] = {
    "DRL E(x0, t)": ("configs/drl_time_wrn.yaml", [], "runs/drl_time_wrn"),
    "random init": None,
    "DRL static code (the recipe's encoder)": ("configs/drl.yaml", ["--evaluate", "false",
                                                                   "--trainer.limit_val_batches", "0"],
                                               "runs/drl_static"),
    "autoencoder": ("configs/baselines/autoencoder.yaml", ["--evaluate", "false"], "runs/baselines/autoencoder"),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_").replace("__", "_")


def laplacenet_encoder(name: str, steps: int) -> str:
    """The start's checkpoint, trained first (in this process) when its run folder has none."""
    from diffrep.cli import main as diffrep

    start = LAPLACENET_STARTS[name]
    if start is None:
        return "null"
    config, overrides, root = start
    last = REPO / root / "checkpoints/last.ckpt"
    if not last.is_file():
        diffrep(["fit", "--config", str(REPO / config), *overrides, "--trainer.max_steps", str(steps),
                 "--trainer.default_root_dir", str(REPO / root), "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false"])
    return str(last)


def laplacenet_curve(run: Path) -> list[dict]:
    """(epoch, fit minutes, validation accuracy, pseudo-label accuracy) of every epoch, over resumed versions."""
    import csv

    rows: dict[int, dict] = {}
    for path in sorted(run.glob("lightning_logs/version_*/metrics.csv")):
        with path.open() as f:
            for line in csv.DictReader(f):
                epoch = int(line["epoch"]) if line.get("epoch") else None
                if epoch is None:
                    continue
                row = rows.setdefault(epoch, {"epoch": epoch})
                for key, name in (("val/accuracy", "val_accuracy"), ("time/fit_minutes", "minutes"),
                                  ("pseudo/accuracy", "pseudo_accuracy")):
                    if line.get(key):
                        row[name] = float(line[key])
    return [rows[e] for e in sorted(rows)]


def laplacenet_run_folder(name: str, draw: int, seed: int, args: argparse.Namespace) -> Path:
    """Where one LaplaceNet run of a start, label draw, seed and budget lives (and resumes from)."""
    budget = f"e{args.max_epochs}" + (f"m{args.minutes}" if args.minutes else "")
    return REPO / "runs/claims_laplacenet" / f"{slug(name)}_draw{draw}_seed{seed}_{budget}"


def laplacenet_run(name: str, draw: int, seed: int, args: argparse.Namespace) -> dict:
    """One LaplaceNet fit (resumed from its last.ckpt if interrupted) and its test accuracy."""
    from diffrep.cli import main as diffrep

    run = laplacenet_run_folder(name, draw, seed, args)
    done = run / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    encoder = laplacenet_encoder(name, args.encoder_steps)
    common = ["--config", str(REPO / "configs/laplacenet.yaml"), "--model.init_args.start.checkpoint", encoder,
              "--model.init_args.seed", str(seed), "--seed_everything", str(seed),
              "--data.init_args.label_seed", str(draw), "--trainer.default_root_dir", str(run)]
    last = run / "checkpoints/last.ckpt"
    hours, minutes = divmod(args.minutes or 0, 60)
    diffrep(["fit", *common, "--trainer.max_epochs", str(args.max_epochs),
             "--trainer.max_time", f"00:{hours:02d}:{minutes:02d}:00" if args.minutes else "null",
             "--trainer.logger", str(REPO / "configs/logger/csv.yaml"),
             "--trainer.logger.init_args.save_dir", str(run), "--trainer.enable_progress_bar", "false",
             *(["--ckpt_path", "last"] if last.is_file() else [])])
    diffrep(["test", *common, "--ckpt_path", str(last), "--trainer.logger", "false",
             "--trainer.enable_progress_bar", "false"])
    from official_speed import machine  # the record keeps where each run (and its encoder) trained

    report = json.loads((run / "checkpoints/last.report.json").read_text())
    result = {"entry": name, "draw": draw, "seed": seed, "encoder": encoder, "step": report["global_step"],
              "test_accuracy": report["metrics"]["test/accuracy"], "curve": laplacenet_curve(run),
              "machine": machine()}
    done.write_text(json.dumps(result, indent=1))
    return result


def laplacenet_finished(name: str, draw: int, seed: int, args: argparse.Namespace) -> dict | None:
    """A run's result.json if it finished, else None (``--report``: tabulate without training)."""
    done = laplacenet_run_folder(name, draw, seed, args) / "result.json"
    return json.loads(done.read_text()) if done.is_file() else None


def laplacenet_stored(args: argparse.Namespace) -> dict:
    """The committed record if it has the same budget, else an empty one (runs/ is not committed): a later
    call that adds seeds or draws keeps its finished runs instead of training them again or dropping them."""
    path = Path(args.results_dir) / "claims_laplacenet.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    budget = (record.get("encoder_steps"), record.get("max_epochs"), record.get("minutes"))
    return record if budget == (args.encoder_steps, args.max_epochs, args.minutes) else {}


def laplacenet_over_seeds(results: list[dict], first: str) -> dict:
    """Per label draw where ``first`` and another start ran 2+ training seeds: each such start's test accuracy
    as mean +- std over its seeds (their count shown), and ``first`` minus each start paired by seed: the
    spread over training seeds a verdict's margin must exceed."""
    view = {}
    for draw in sorted({r["draw"] for r in results}):
        runs = [r for r in results if r["draw"] == draw]
        table = {}
        for name in dict.fromkeys(r["entry"] for r in runs):
            accs = {r["seed"]: r["test_accuracy"] for r in runs if r["entry"] == name}
            if len(accs) >= 2:
                table[name] = {"mean": float(np.mean(list(accs.values()))),
                               "std": float(np.std(list(accs.values()), ddof=1)),
                               "seeds": {str(s): accs[s] for s in sorted(accs)}}
        if first in table and len(table) > 1:
            view[str(draw)] = {"table": table, "paired": {
                name: paired_difference(runs, first, name) for name in table if name != first}}
    return view


def paired_difference(results: list[dict], first: str, other: str) -> dict | None:
    """``first`` minus ``other`` in test accuracy on the same (label draw, training seed): the mean and
    sample std of the paired differences, the margin a verdict needs to exceed its spread."""
    by_key = {(r["entry"], r["draw"], r["seed"]): r["test_accuracy"] for r in results}
    diffs = [acc - by_key[(other, d, s)] for (e, d, s), acc in sorted(by_key.items())  # by draw, then seed
             if e == first and (other, d, s) in by_key]
    if not diffs:
        return None
    return {"mean": float(np.mean(diffs)), "std": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0,
            "pairs": len(diffs), "differences": [float(x) for x in diffs]}


def laplacenet_table(results: list[dict]) -> dict:
    """Test accuracy per start: mean +- std over every run (draws x seeds), the runs, and per training seed
    the mean over its draws (so the seed spread is visible beside the draw spread)."""
    table = {}
    for name in dict.fromkeys(r["entry"] for r in results):
        runs = [r for r in results if r["entry"] == name]
        accs = [r["test_accuracy"] for r in runs]
        seeds = sorted({r["seed"] for r in runs})
        table[name] = {"mean": float(np.mean(accs)), "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                       "runs": len(accs), "draws": sorted({r["draw"] for r in runs}), "seeds": seeds,
                       "seed_means": {str(s): float(np.mean([r["test_accuracy"] for r in runs if r["seed"] == s]))
                                      for s in seeds},
                       "mean_last_val": float(np.mean([r["curve"][-1]["val_accuracy"] for r in runs]))}
    return table


def top_on_validation(results: list[dict], count: int) -> list[str]:
    """The ``count`` starts with the highest mean final validation accuracy: which starts get further
    training seeds is chosen on the validation split, never on the test split."""
    last_val: dict[str, list[float]] = {}
    for r in results:
        last_val.setdefault(r["entry"], []).append(r["curve"][-1]["val_accuracy"])
    return sorted(last_val, key=lambda n: -float(np.mean(last_val[n])))[:count]


def laplacenet(args: argparse.Namespace) -> None:
    """Claim 4 with the paper's protocol (module docstring): every start on every draw with --seeds, then
    --top-seeds for the --top starts (ranked on validation); table and figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = args.entries or list(LAPLACENET_STARTS)
    unknown = [n for n in names if n not in LAPLACENET_STARTS]
    if unknown:
        raise SystemExit(f"unknown entries {unknown}; choose from {list(LAPLACENET_STARTS)}")
    earlier = laplacenet_stored(args)
    stored = {(r["entry"], r["draw"], r["seed"]): r for r in earlier.get("runs", [])}
    fresh = laplacenet_finished if args.report else laplacenet_run

    def run(name: str, draw: int, seed: int, args: argparse.Namespace) -> dict | None:
        return stored.get((name, draw, seed)) or fresh(name, draw, seed, args)

    planned = [(n, d, s) for n in names for d in args.draws for s in args.seeds]
    results = [run(*key, args) for key in planned]
    first_round_done = all(r is not None for r in results)
    top = top_on_validation([r for r in results if r], args.top) if args.top_seeds and first_round_done else []
    more = [(n, d, s) for n in top for d in args.draws for s in args.top_seeds if s not in args.seeds]
    results += [run(*key, args) for key in more]
    pending = [list(key) for key, r in zip(planned + more, results, strict=True) if r is None]
    if args.report and args.top_seeds and not first_round_done:
        pending.append(f"--top-seeds {args.top_seeds} for the {args.top} starts best on validation, once the "
                       "runs above finish")
    results = [r for r in results if r is not None]
    keys = {(r["entry"], r["draw"], r["seed"]) for r in results}
    results += [r for key, r in stored.items() if key not in keys]
    if not results:
        raise SystemExit("no finished LaplaceNet run to report: run without --report first")
    reference = next(n for n in LAPLACENET_STARTS if any(r["entry"] == n for r in results))
    table = laplacenet_table(results)
    record = {"date": time.strftime("%Y-%m-%d"), "draws": sorted({r["draw"] for r in results}),
              "seeds": sorted({r["seed"] for r in results}),
              "top_seeds": args.top_seeds or earlier.get("top_seeds", []),
              "top_on_validation": top or earlier.get("top_on_validation", []), "encoder_steps": args.encoder_steps,
              "max_epochs": args.max_epochs, "minutes": args.minutes, "table": table,
              "paired": {name: paired_difference([r for r in results if r["seed"] == 0], reference, name)
                         for name in table if name != reference},
              "over_seeds": laplacenet_over_seeds(results, reference), "pending": pending, "runs": results}
    (Path(args.results_dir) / "claims_laplacenet.json").write_text(json.dumps(record, indent=1))
    colours = dict(zip(LAPLACENET_STARTS, plt.get_cmap("tab10").colors, strict=False))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in results:
        points = [(p["epoch"] + 1, 100 * p["val_accuracy"]) for p in r["curve"] if "val_accuracy" in p]
        first = r is next(x for x in results if x["entry"] == r["entry"])
        ax.plot(*zip(*points, strict=True), marker="o", markersize=3, alpha=0.7, color=colours[r["entry"]],
                label=f"{r['entry']} ({table[r['entry']]['runs']} runs)" if first else None)
    ax.set_xlabel("LaplaceNet epochs (10 supervised warm-up, then ~1100 steps each)")
    ax.set_ylabel("validation accuracy, 10 labels per class (%)")
    ax.set_title("one line per run (label draw x training seed)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(args.figure_dir) / "claims_laplacenet.png", dpi=120)
    print("| start | test accuracy (%) | runs | per seed |\n|---|---:|---:|---|")
    for name, row in table.items():
        seeds = ", ".join(f"seed {s}: {100 * m:.1f}" for s, m in row["seed_means"].items())
        print(f"| {name} | {100 * row['mean']:.1f} +- {100 * row['std']:.1f} | {row['runs']} | {seeds} |")
    for name, pair in record["paired"].items():
        if pair:
            print(f"{reference} minus {name}: {100 * pair['mean']:+.1f} +- {100 * pair['std']:.1f} points "
                  f"over {pair['pairs']} paired draws at seed 0")
    for draw, view in record["over_seeds"].items():
        for name, row in view["table"].items():
            print(f"draw {draw}, {name}: {100 * row['mean']:.1f} +- {100 * row['std']:.1f} over seeds "
                  + ", ".join(f"{100 * a:.1f}" for a in row["seeds"].values()))
        for name, pair in view["paired"].items():
            print(f"draw {draw}, {reference} minus {name}: {100 * pair['mean']:+.1f} +- {100 * pair['std']:.1f} "
                  f"over {pair['pairs']} training seeds")
    for key in pending:
        print(f"pending: {key}")
    print(f"wrote claims_laplacenet.json to {args.results_dir} and its figure to {args.figure_dir}")


#: claim-2 entry -> its run folder under --runs (benchmarks/time_to_accuracy.py's ENTRIES)
CLAIM2_RUNS = {"PDAE": "runs/pdae", "Diff-AE": "runs/diffae", DIFFAE_CONV: "runs/diffae_conv_encoder",
               PDAE_HALFUNET: "runs/pdae_halfunet_encoder"}


def code_alone(args: argparse.Namespace) -> None:
    """Claim 2's reconstructions from each entry's last checkpoint (module docstring)."""
    from official_speed import machine

    from diffrep.datamodules import FashionMNISTDataModule
    from diffrep.evaluation.reconstruction import reconstruction_metrics
    from diffrep.lightning_modules.loading import load_trained

    path = Path(args.results_dir) / "claims_efficiency_code_alone.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    for name in args.entries:
        if name not in CLAIM2_RUNS:
            raise SystemExit(f"no claim-2 entry {name!r}; choose from {list(CLAIM2_RUNS)}")
        ckpt = Path(args.runs) / CLAIM2_RUNS[name] / "checkpoints/last.ckpt"
        if not ckpt.is_file():
            raise SystemExit(f"{name}: no checkpoint at {ckpt}; run benchmarks/time_to_accuracy.py --out "
                             f"{args.runs} --only {name!r} --minutes 60 --reconstruction first")
        model = load_trained(ckpt, ["PDAE", "DiffAE"], f"the {name} checkpoint")
        data = FashionMNISTDataModule(image_size=model.image_shape[-1])
        data.setup()
        start = time.perf_counter()
        scores = reconstruction_metrics(model, data.evaluation_split("test"), args.num_images, args.steps,
                                        batch_size=100, seed=0)
        record[name] = {**{k: round(v, 6) for k, v in scores.items()}, "step": load_step(ckpt),
                        "checkpoint": str(ckpt), "date": time.strftime("%Y-%m-%d"), "machine": machine(),
                        "seconds": round(time.perf_counter() - start)}
        print(name, json.dumps(record[name]), flush=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def load_step(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=False).get("global_step", -1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", default=str(REPO / "benchmarks/results"))
    parser.add_argument("--figure-dir", default=str(REPO / "docs"))
    sub = parser.add_subparsers(dest="claim", required=True)
    ts = sub.add_parser("time-sampler", help="DRL's Figure 2: uniform against high-noise t, 2-D codes")
    ts.add_argument("--data", choices=sorted(DATA), default="digits")
    ts.add_argument("--steps", type=int, default=3000)
    ts.add_argument("--out", default=None)
    ts.add_argument("--decode-steps", type=int, default=50, help="DDIM steps of every decode and inversion")
    ts.add_argument("--seeds", type=int, default=1,
                    help="training seeds 0..N-1 of both samplers (seed 0 draws the figure; stored seeds are kept)")
    ts.add_argument("--replot", action="store_true",
                    help="redraw the figure from the stored record and its _panels.npz, no training")
    gap = sub.add_parser("pdae-gap", help="PDAE: x0 from x_t with and without the code, against t")
    gap.add_argument("--pdae", default="runs/pdae/checkpoints/last.ckpt")
    gap.add_argument("--num-images", type=int, default=500)
    down = sub.add_parser("downstream", help="DRL's Figures 4-5 from make compare-semi's results")
    down.add_argument("--results", default=str(REPO / "runs/compare_semi/results.json"))
    down.add_argument("--replot", action="store_true",
                      help="redraw the figure from benchmarks/results/claims_downstream.json alone (no compare run)")
    code = sub.add_parser("time-code", help="DRL's time-dependent code at each t and joined (claim 4)")
    code.add_argument("--ckpt", default=str(REPO / "runs/time_to_accuracy_claim4/runs/drl_time_wrn/checkpoints/"
                                                    "last.ckpt"))
    code.add_argument("--data", choices=sorted(DATA), default="fashion_mnist")
    seeded = sub.add_parser("time-code-seeds",
                            help="claim 4 on frozen codes: E(x0, t) against the static code over training seeds")
    seeded.add_argument("--results", default=str(
        REPO / "benchmarks/results/time_to_accuracy_time_to_accuracy_claim4_seeds.json"))
    seeded.add_argument("--minutes", type=float, default=15.0, help="the mark both sides are read at")
    eff = sub.add_parser("efficiency", help="PDAE against Diff-AE on one clock (claim 2)")
    eff.add_argument("--results",
                     default=str(REPO / "benchmarks/results/time_to_accuracy_time_to_accuracy_claim2.json"))
    alone = sub.add_parser("code-alone", help="claim 2: each entry's code decoded from inverted and random x_T")
    alone.add_argument("--entries", nargs="+", required=True, help=f"of {list(CLAIM2_RUNS)}")
    alone.add_argument("--runs", default=str(REPO / "runs/time_to_accuracy_claim2"))
    alone.add_argument("--num-images", type=int, default=500)
    alone.add_argument("--steps", type=int, default=25, help="DDIM steps of the inversion and of each decode")
    lap = sub.add_parser("laplacenet", help="claim 4 with the paper's protocol: LaplaceNet from each start")
    lap.add_argument("--entries", nargs="*", default=None, help=f"a subset of {list(LAPLACENET_STARTS)}")
    lap.add_argument("--draws", nargs="*", type=int, default=[0, 1, 2], help="label draws (label_seed)")
    lap.add_argument("--seeds", nargs="*", type=int, default=[0], help="training seeds of every start")
    lap.add_argument("--top-seeds", nargs="*", type=int, default=[1],
                     help="further training seeds for the --top starts (ranked on validation accuracy)")
    lap.add_argument("--top", type=int, default=2, help="how many starts get --top-seeds")
    lap.add_argument("--encoder-steps", type=int, default=3000, help="training steps of each start's encoder")
    lap.add_argument("--max-epochs", type=int, default=12,
                     help="each LaplaceNet run's budget in epochs (10 of them the warm-up, ~1100 steps a later one)")
    lap.add_argument("--report", action="store_true",
                     help="tabulate the finished runs only (train nothing); the unfinished are listed as pending")
    lap.add_argument("--minutes", type=int, default=None,
                     help="a wall-clock cap (max_time) instead; then the result depends on what else the CPU runs")
    args = parser.parse_args(argv)
    np.random.seed(0)
    {"time-sampler": time_sampler, "pdae-gap": pdae_gap, "downstream": downstream,
     "time-code": time_code, "time-code-seeds": time_code_seeds, "efficiency": efficiency, "code-alone": code_alone,
     "laplacenet": laplacenet}[args.claim](args)


if __name__ == "__main__":
    main()
