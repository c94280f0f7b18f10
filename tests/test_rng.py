"""The random streams a checkpoint keeps: restored exactly, weights_only-loadable, per rank under DDP."""

import io
import random

import numpy as np
import torch

from diffrep import rng


def draws() -> tuple:
    return torch.rand(3), np.random.rand(3), random.random()


def test_restored_streams_draw_what_the_unbroken_run_draws():
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    np.random.randn()  # numpy's cached Gaussian is part of its state
    saved = rng.capture()
    expected = draws()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # tensors, numbers and strings only
    draws()  # the run moves on
    rng.restore(loaded)
    got = draws()
    torch.testing.assert_close(got[0], expected[0])
    assert np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_each_rank_draws_its_own_stream_from_the_shared_one():
    firsts = []
    for rank in (0, 1):
        torch.manual_seed(3)
        rng.reseed_for_rank(rank, world_size=2)
        firsts.append(torch.rand(4))
    assert not torch.equal(*firsts)
    torch.manual_seed(3)
    alone = torch.rand(4)
    torch.manual_seed(3)
    rng.reseed_for_rank(0, world_size=1)  # one process: the stream is left alone
    torch.testing.assert_close(torch.rand(4), alone)


def test_evaluation_forks_the_rng_of_its_own_gpu_and_only_the_cpu_otherwise(monkeypatch):
    forked = []
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices: forked.append(devices))
    rng.forked(torch.device("cuda", 1))
    rng.forked(torch.device("cpu"))
    assert forked == [[torch.device("cuda", 1)], []]  # the training stream of that GPU; the CPU's alone
