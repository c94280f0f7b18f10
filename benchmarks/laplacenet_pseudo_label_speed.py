"""LaplaceNet's pseudo-labelling step (features of every training image + k-NN graph + CG solve +
alignment) timed side by side with the official code's, in one process, alternating rounds.

Usage: python benchmarks/laplacenet_pseudo_label_speed.py --official PATH [--rounds 3] [--images 60000]
  PATH: the LaplaceNet/ folder of korabs-x/representation_score_based (imported at run time; needs faiss-cpu)

Both sides get the same network weights and the same images: the 60000 Fashion-MNIST training images
(grey replicated to three channels, as the official WRN's first conv takes RGB; padded to 32 px), a
WRN-10-1 with the time embedding (the CPU-sized E(x0, t) of configs/laplacenet.yaml, in the official
class ``models/wrn.py`` built at depth 10, width 1, and in diffrep's). Official: ``helpers.extract_features_simp``
over a DataLoader of batch 100 (its batch size), then ``DBSS.one_iter_true(k=50, max_iter=30)`` (faiss kept
on the CPU, SciPy's ``tol`` passed as ``rtol``, as the parity harness does). diffrep:
``LaplaceNet.train_features`` (eval batch 500, fp32 and bf16 autocast) then ``graph_pseudo_labels``.
The first round is a warm-up and is not counted; the medians of the others are reported with the
machine. Writes benchmarks/results/laplacenet_pseudo_label_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from official_speed import machine  # noqa: E402

from diffrep.evaluation.graph_pseudo_labels import graph_pseudo_labels  # noqa: E402
from diffrep.nets.classifier import FeatureClassifier  # noqa: E402
from diffrep.nets.ncsnpp_official import wrn_state_dict  # noqa: E402
from diffrep.nets.wrn import TimeWideResNet  # noqa: E402


def fashion_mnist_rgb(n: int) -> tuple[torch.Tensor, np.ndarray]:
    from diffrep.datamodules import FashionMNISTDataModule

    images, labels = FashionMNISTDataModule().load_split("train")
    x = torch.nn.functional.pad(images[:n].float() / 127.5 - 1, (2, 2, 2, 2), value=-1.0).repeat(1, 3, 1, 1)
    return x, labels[:n].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="the LaplaceNet/ folder of the DRL repository")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, the first a warm-up (default 3)")
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/laplacenet_pseudo_label_speed.json")
    opts = parser.parse_args()
    if not (opts.official / "lp" / "db_semisuper.py").is_file():
        print(f"error: {opts.official} is not the official LaplaceNet/ folder (no lp/db_semisuper.py)", file=sys.stderr)
        sys.exit(2)
    sys.path.insert(0, str(opts.official.resolve()))
    import helpers
    from models.wrn import build_wideresnet
    from official_parity_laplacenet import official_pseudo_labels

    images, labels = fashion_mnist_rgb(opts.images)
    labelled = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(10)])
    torch.manual_seed(0)
    official = build_wideresnet(10, 1, 0, 10, 64).eval()
    ours = FeatureClassifier(TimeWideResNet(3, 10, 1), 64, 10).eval()
    ours.backbone.load_state_dict(wrn_state_dict(official.state_dict()))
    official_loader = DataLoader(TensorDataset(images), batch_size=100, shuffle=False)
    our_loader = DataLoader(TensorDataset(images, torch.from_numpy(labels)), batch_size=500, shuffle=False)

    def run_official() -> dict[str, float]:
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            feats = helpers.extract_features_simp(official_loader, official, SimpleNamespace(device="cpu"))
        middle = time.perf_counter()
        official_pseudo_labels(feats, labels, labelled, 10)
        return {"features_s": middle - start, "graph_s": time.perf_counter() - middle}

    def run_ours(bf16: bool) -> dict[str, float]:
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            feats = torch.cat([ours.features(x).float() for x, _ in our_loader]).numpy()
        middle = time.perf_counter()
        graph_pseudo_labels(feats, labels, labelled, 10)
        return {"features_s": middle - start, "graph_s": time.perf_counter() - middle}

    sides = {"official (fp32)": run_official, "diffrep (fp32)": lambda: run_ours(False),
             "diffrep (bf16 autocast)": lambda: run_ours(True)}
    times: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for r in range(opts.rounds):
        for name, fn in sides.items():
            result = fn()
            print(f"round {r}{' (warm-up)' if r == 0 else ''}: {name}: features {result['features_s']:.1f} s, "
                  f"graph + solve {result['graph_s']:.1f} s", flush=True)
            if r:
                times[name].append(result)
    table = {name: {key: statistics.median(t[key] for t in rows) for key in ("features_s", "graph_s")}
             for name, rows in times.items()}
    for row in table.values():
        row["total_s"] = row["features_s"] + row["graph_s"]
    base = table["official (fp32)"]["total_s"]
    for row in table.values():
        row["speedup"] = base / row["total_s"]
    record = {"date": time.strftime("%Y-%m-%d"), "cpu": machine(), "cores": torch.get_num_threads(),
              "images": opts.images, "network": "WRN-10-1 with time embedding, 3 x 32 x 32",
              "rounds_counted": opts.rounds - 1, "median": table,
              "command": f"python benchmarks/laplacenet_pseudo_label_speed.py --official PATH --rounds {opts.rounds}"}
    opts.out.write_text(json.dumps(record, indent=1))
    print("| side | features (s) | graph + CG + alignment (s) | total (s) | speed-up |\n|---|---:|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['features_s']:.1f} | {row['graph_s']:.1f} | {row['total_s']:.1f} | "
              f"{row['speedup']:.2f}x |")
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
