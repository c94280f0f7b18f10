"""A simulated 2-node x 1-process run (two processes on localhost, gloo, the environment
variables a cluster launcher sets), streaming a prepared data set, then resumed on one node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import lightning as L
import pytest
import torch
from conftest import REPO, quiet_trainer, tiny_unet_config
from test_streaming import digit_folder, prepared  # noqa: F401  (module fixtures)

from diffrep.datamodules import StreamingImageDataModule
from diffrep.lightning_modules import DPM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_run(prepared, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("two_nodes")
    port = str(free_port())
    nodes = []
    for node_rank in (0, 1):
        env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, "NODE_RANK": str(node_rank), "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
        nodes.append(subprocess.Popen([sys.executable, str(REPO / "tests/scripts/multinode_fit.py"), str(out),
                                       str(prepared)], env=env, cwd=out, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, log in zip(nodes, logs, strict=True):
        assert node.returncode == 0, log[-3000:]
    return out


class SeenImages(L.Callback):
    def __init__(self) -> None:
        self.images: list[torch.Tensor] = []
        self.epochs: list[tuple[int, int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.images.append(batch[0].clone())
        self.epochs.append((trainer.current_epoch, batch_idx))


def as_keys(images: torch.Tensor) -> list[bytes]:
    return [x.numpy().tobytes() for x in images]


@pytest.mark.slow
def test_two_nodes_shard_the_stream_and_one_node_resumes_where_they_stopped(two_node_run, prepared):  # noqa: F811
    """Two nodes train 9 steps on their own shards (distinct images, the same weights at the end).
    One node resumed from their step-8 checkpoint trains on exactly the images the two nodes took
    at step 9, then on a fresh epoch: the 2-node epoch's plan (9 batches of 16 per rank, 288 of
    the 304 images; drop_last leaves 16 out) is finished, not restarted or skipped."""
    ranks = [torch.load(two_node_run / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert [(r["world_size"], r["num_nodes"]) for r in ranks] == [(2, 2), (2, 2)]
    for key, value in ranks[0]["state_dict"].items():
        assert torch.equal(value, ranks[1]["state_dict"][key]), key
    first = as_keys(ranks[0]["images"][:128]) + as_keys(ranks[1]["images"][:128])
    ninth = as_keys(ranks[0]["images"][128:]) + as_keys(ranks[1]["images"][128:])
    assert len(set(first + ninth)) == 288

    data = StreamingImageDataModule(root=str(prepared), batch_size=16)
    data.setup()
    everything = as_keys(torch.stack([data.splits["train"][i][0] for i in range(len(data.splits["train"]))]))
    assert len(set(everything)) == 304 and set(first + ninth) <= set(everything)

    L.seed_everything(0)
    seen = SeenImages()
    trainer = quiet_trainer(two_node_run / "resume", max_steps=14, callbacks=[seen])
    trainer.fit(DPM(unet=tiny_unet_config(), optimisation={"lr": 2e-3}, ema={"decay": 0.9}), datamodule=data,
                ckpt_path=str(two_node_run / "ckpts" / "step8.ckpt"))
    assert trainer.global_step == 14
    assert sorted(as_keys(torch.cat(seen.images[:2]))) == sorted(ninth)
    assert [e for e, _ in seen.epochs] == [0, 0, 1, 1, 1, 1]
    assert len(set(as_keys(torch.cat(seen.images[2:])))) == 64  # epoch 1: a fresh pass, no repeats
