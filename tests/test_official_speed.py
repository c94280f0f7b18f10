"""benchmarks/official_speed.py's pieces that need no official code and no timing: the FLOP count
of a known layer, the alternation of entries, and a missing official copy."""

import importlib.util
import sys

import lightning as L
import pytest
import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
spec = importlib.util.spec_from_file_location("official_speed", REPO / "benchmarks/official_speed.py")
official_speed = importlib.util.module_from_spec(spec)
sys.modules["official_speed"] = official_speed
spec.loader.exec_module(official_speed)


class OneLinear(L.LightningModule):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.net = torch.nn.Linear(d_in, d_out)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).square().mean()


def test_flops_per_image_of_a_linear_layer_is_its_closed_form():
    """Forward x W^T: 2 d_in d_out per image; backward: the weight's gradient, the same again (the
    input needs none); the elementwise ops are not counted."""
    assert official_speed.flops_per_image(OneLinear(64, 32), torch.randn(8, 64)) == 4 * 64 * 32


def test_alternation_visits_every_entry_in_every_round_and_drops_warmup_rounds():
    calls = []
    entries = {name: (lambda k, name=name: calls.append((name, k)) or 0.5) for name in ("official", "ours")}
    rates = official_speed.alternate(entries, rounds=2, steps=3, warmup=1, batch=4)
    assert calls == [("official", 3), ("ours", 3)] * 3
    assert rates == {"official": [24.0, 24.0], "ours": [24.0, 24.0]}  # 4 images x 3 steps / 0.5 s


def test_a_missing_official_copy_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        official_speed.main(["--drl", str(tmp_path / "nowhere")])
    assert exited.value.code == 2 and "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        official_speed.main([])
    assert exited.value.code == 2


def test_the_levers_set_the_fast_paths_on_the_network_they_act_on():
    """--levers' channels_last entry lays out the denoiser's convolutions NHWC (DRL's unet, PDAE's shift
    decoder), as ``fast: {channels_last: true}`` in a config does; the plain entry leaves them NCHW."""
    from conftest import make_drl

    def conv(model):  # one whose NCHW and NHWC layouts differ (several input channels, 3x3)
        return next(m for m in model.unet.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1
                    and m.kernel_size == (3, 3)).weight

    made = official_speed.with_fast_paths(make_drl, channels_last=True)()
    assert made.channels_last and conv(made).is_contiguous(memory_format=torch.channels_last)
    assert not conv(make_drl()).is_contiguous(memory_format=torch.channels_last)


def test_diffrep_entries_time_each_precision_asked_and_each_lever_in_each(monkeypatch):
    """On a CPU without native bf16 the benchmark times fp32 alone (bf16 there is emulated, slower than
    fp32): the levers then act on the fp32 step."""
    made = []
    monkeypatch.setattr(official_speed, "trainer_entry", lambda make, images, precision: made.append(precision))
    fp32 = official_speed.diffrep_entries(lambda: None, torch.zeros(1), ["fp32"], levers=True)
    assert list(fp32) == ["diffrep fp32", "diffrep fp32 channels_last", "diffrep fp32 compile"]
    assert made == ["32-true"] * 3
    both = official_speed.diffrep_entries(lambda: None, torch.zeros(1), ["fp32", "bf16"], levers=False)
    assert list(both) == ["diffrep fp32", "diffrep bf16"] and made[3:] == ["32-true", "bf16-mixed"]


def test_op_times_put_a_convolution_and_a_dropout_mask_in_their_groups():
    conv, x = torch.nn.Conv2d(4, 8, 3), torch.randn(2, 4, 16, 16)

    def run(k: int) -> float:  # an entry's call: the untimed step and k more
        for _ in range(k + 1):
            conv(x).sum().backward()
        return 0.0

    plain = official_speed.op_times(run)
    assert plain["convolution"] > 0 and plain["dropout mask"] == 0 and plain["attention"] == 0
    assert plain["all ops"] >= plain["convolution"]

    def with_dropout(k: int) -> float:
        for _ in range(k + 1):
            torch.nn.functional.dropout(torch.ones(64, 64), 0.1, training=True)
        return 0.0

    assert official_speed.op_times(with_dropout)["dropout mask"] > 0
