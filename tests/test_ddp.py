"""Real 2-process DDP on CPU (gloo): both ranks end with the same weights and EMA, the logged
loss is the mean over ranks, and the ranks draw different noise."""

import csv
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO


@pytest.mark.slow
def test_two_process_cpu_ddp_fit_of_a_tiny_pdae(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(REPO / "tests/scripts/ddp_fit.py"), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["state_dict"].keys() == rank1["state_dict"].keys()
    for key, value in rank0["state_dict"].items():
        assert torch.equal(value, rank1["state_dict"][key]), key  # weights, EMA buffers, frozen DPM
    assert any(k.startswith("ema.") for k in rank0["state_dict"])
    assert not torch.equal(rank0["rng"], rank1["rng"])  # per-rank t and noise streams
    assert rank0["losses"] != rank1["losses"]  # different data shards and noise
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        logged = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    expected = [(a + b) / 2 for a, b in zip(rank0["losses"], rank1["losses"])]
    assert len(logged) == len(expected) == 8
    torch.testing.assert_close(torch.tensor(logged), torch.tensor(expected), rtol=1e-5, atol=1e-7)
