"""benchmarks/paper_dry_run.py: its counters against closed forms, and one paper config (the
full-size DRL MNIST model) through `diffrep fit` on synthetic data, checkpoint and all."""

import importlib.util
import sys

import pytest
import torch
from conftest import REPO

spec = importlib.util.spec_from_file_location("paper_dry_run", REPO / "benchmarks/paper_dry_run.py")
dry = importlib.util.module_from_spec(spec)
sys.modules["paper_dry_run"] = dry
spec.loader.exec_module(dry)


class LinearLoss(torch.nn.Module):
    """A loss whose FLOPs and saved activations have closed forms."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(d_in, d_out, bias=False)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).square().mean()


def test_flops_and_saved_activations_match_their_closed_forms():
    """Forward 2*in*out per image, backward 2*in*out for the weight's gradient (the input needs
    none); autograd saves the input (in floats) and the output (out floats) for the square."""
    numbers = dry.measure(LinearLoss(48, 10), (torch.randn(4, 3, 4, 4), torch.zeros(4)))
    assert numbers["gflop_per_image"] * 1e9 == pytest.approx(4 * 48 * 10)
    assert numbers["activation_mb_per_image"] * 2**20 == pytest.approx(4 * (48 + 10))
    assert numbers["params"] == numbers["trainable"] == 480


class TwoLinearLoss(torch.nn.Module):
    """Two layers: the second's weight is saved for backward (its input needs a gradient), and a
    weight is a parameter, not an activation."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = torch.nn.Linear(48, 10, bias=False), torch.nn.Linear(10, 5, bias=False)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x.flatten(1))).square().mean()


def test_saved_weights_are_not_counted_as_activations():
    numbers = dry.measure(TwoLinearLoss(), (torch.randn(4, 3, 4, 4), torch.zeros(4)))
    # saved per image: the input (48 floats), the hidden layer (10) and the output (5); not the 10x5 weight
    assert numbers["activation_mb_per_image"] * 2**20 == pytest.approx(4 * (48 + 10 + 5))
    # forward 2*480 + 2*50; backward: both weights' gradients and the hidden layer's (2*480 + 2*50 + 2*50)
    assert numbers["gflop_per_image"] * 1e9 == pytest.approx(4 * 480 + 6 * 50)


def test_a_paper_config_runs_through_diffrep_fit_and_is_costed(tmp_path):
    row = dry.dry_run("drl_mnist", tmp_path, None)
    assert (tmp_path / "drl_mnist" / "checkpoints" / "last.ckpt").is_file()
    assert row["paper_batch"] == 64 and row["paper_images"] == 70_000 * 64
    # the paper's networks: NCSN++ (1 channel) and the WRN-28-2; NCSN++'s 16 Fourier frequencies do not train
    assert row["params"] == 2_470_626 and row["trainable"] == row["params"] - 16
    assert row["gflop_per_image"] > 1 and row["activation_mb_per_image"] > 1


def test_the_dry_run_turns_compilation_off(tmp_path):
    """The paper configs compile for the GPU; on the CPU the dry run proves the model, not the compiler."""
    config, _ = dry.dry_config("drl_mnist", tmp_path, None)
    assert config["model"]["init_args"]["fast"]["compile"] is False
