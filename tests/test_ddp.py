"""Real 2-process DDP on CPU (gloo): both ranks end with the same weights and EMA, the logged
loss is the mean over ranks, and the ranks draw different noise."""

import csv
import os
import subprocess
import sys

import lightning as L
import pytest
import torch
from conftest import REPO, digits, quiet_trainer

from diffrep.lightning_modules import PDAE


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(REPO / "tests/scripts/ddp_fit.py"), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp_path


class FirstBatch(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "images"):
            self.images = batch[0].clone()


@pytest.mark.slow
def test_a_two_device_checkpoint_resumes_on_one_device_where_the_data_left_off(ddp_run, tmp_path):
    """8 steps x 2 ranks x 16 images consumed 256 items of epoch 0's permutation; one device
    resumes at item 256 of the same permutation, at global step 8."""
    model = PDAE(
        str(ddp_run / "dpm.ckpt"),
        latent_dim=8,
        optimisation={"lr": 1e-3},
        ema={"decay": 0.9},
        encoder={"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1},
    )
    first = FirstBatch()
    trainer = quiet_trainer(tmp_path, max_steps=10, callbacks=[first])
    data = digits(batch_size=16)
    trainer.fit(model, datamodule=data, ckpt_path=str(ddp_run / "ckpts/last.ckpt"))
    assert trainer.global_step == 10
    train = data.splits["train"]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(data.seed)).tolist()
    expected = torch.stack([train[i][0] for i in order[256:272]])
    assert torch.equal(first.images, expected)


@pytest.mark.slow
def test_two_process_cpu_ddp_fit_of_a_tiny_pdae(ddp_run):
    tmp_path = ddp_run
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["state_dict"].keys() == rank1["state_dict"].keys()
    for key, value in rank0["state_dict"].items():
        assert torch.equal(value, rank1["state_dict"][key]), key  # weights, EMA buffers, frozen DPM
    assert any(k.startswith("ema.") for k in rank0["state_dict"])
    assert not torch.equal(rank0["rng"], rank1["rng"])  # per-rank t and noise streams
    assert rank0["losses"] != rank1["losses"]  # different data shards and noise
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        logged = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    expected = [(a + b) / 2 for a, b in zip(rank0["losses"], rank1["losses"], strict=True)]
    assert len(logged) == len(expected) == 8
    torch.testing.assert_close(torch.tensor(logged), torch.tensor(expected), rtol=1e-5, atol=1e-7)
