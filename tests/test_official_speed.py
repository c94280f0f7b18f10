"""benchmarks/official_speed.py's pieces that need no official code and no timing: the FLOP count
of a known layer, the alternation of entries, and a missing official copy."""

import contextlib
import importlib.util
import sys

import lightning as L
import pytest
import torch
from conftest import REPO
from torch.profiler import ProfilerActivity, profile

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
    assert official_speed.training_flops_per_image(OneLinear(64, 32), torch.randn(8, 64)) == 4 * 64 * 32


class OneAttention(L.LightningModule):
    """Self-attention of one head over the rows of x, no weights: what the CPU runs by its fused kernel."""

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        x = x.requires_grad_()
        return torch.nn.functional.scaled_dot_product_attention(x, x, x).sum()


def test_flops_per_image_counts_the_fused_attention_as_its_matmuls():
    """q k^T and (softmax) v: 2 L^2 d each forward; backward: two matmuls for each forward one. The CPU's
    fused kernel has no formula in torch's counter (it would count 0); the count is the unfused path's."""
    batch, length, dim = 4, 64, 16
    flops = official_speed.training_flops_per_image(OneAttention(), torch.randn(batch, 1, length, dim))
    assert flops == 3 * 2 * (2 * length * length * dim)


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
    made, contexts = [], []
    monkeypatch.setattr(official_speed, "trainer_entry", lambda make, images, precision, context=None: (
        made.append(precision), contexts.append(context)))
    fp32 = official_speed.diffrep_entries(lambda: None, torch.zeros(1), ["fp32"], levers=True)
    assert list(fp32) == ["diffrep fp32", "diffrep fp32 channels_last", "diffrep fp32 compile",
                          "diffrep fp32 unfused attention"]
    assert made == ["32-true"] * 4
    assert fused_attention_ran(contextlib.nullcontext) and not fused_attention_ran(contexts[-1])
    both = official_speed.diffrep_entries(lambda: None, torch.zeros(1), ["fp32", "bf16"], levers=False)
    assert list(both) == ["diffrep fp32", "diffrep bf16"] and made[4:] == ["32-true", "bf16-mixed"]


def fused_attention_ran(context, block: torch.nn.Module | None = None) -> bool:
    """Whether the CPU's fused (flash) attention kernel ran inside ``context``: for ``block`` on a 16x16
    map, or for plain (B, heads, L, d) tensors."""
    with context(), profile(activities=[ProfilerActivity.CPU]) as prof:
        if block is None:
            q = torch.randn(2, 2, 64, 16)
            torch.nn.functional.scaled_dot_product_attention(q, q, q)
        else:
            block(torch.randn(2, 64, 16, 16))
    return "aten::_scaled_dot_product_flash_attention_for_cpu" in {e.key for e in prof.key_averages()}


@pytest.mark.parametrize("block", ["AttentionBlock", "AttnBlockpp"])
def test_the_attention_blocks_give_the_cpu_its_fused_kernel(block):
    """The layout (B, heads, L, d) with d contiguous is what the CPU's flash kernel takes; a strided view
    falls back to the unfused math."""
    from diffrep.nets.layers import AttentionBlock
    from diffrep.nets.ncsnpp import AttnBlockpp

    module = AttentionBlock(64, num_heads=2) if block == "AttentionBlock" else AttnBlockpp(64)
    assert fused_attention_ran(contextlib.nullcontext, module)


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


class ConvThenAttention(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x).flatten(2).transpose(1, 2)[:, None]  # (B, 1 head, H W, 4 channels)
        return torch.nn.functional.scaled_dot_product_attention(h, h, h).sum()


def test_group_gflops_splits_a_step_into_its_convolutions_and_attention():
    """Conv forward 2 C_in C_out k^2 per output pixel, and its weight gradient the same (the input needs
    none); attention 3 x 2 x 2 L^2 d, as above. Nothing else here does arithmetic the counter counts."""
    batch, size = 2, 8
    length = size * size
    flops = official_speed.group_gflops(ConvThenAttention(), torch.randn(batch, 2, size, size))
    conv = 2 * (2 * 2 * 4 * 9 * length) * batch
    attention = 3 * 2 * (2 * length * length * 4) * batch
    assert flops["convolution"] * 1e9 == pytest.approx(conv)
    assert flops["attention"] * 1e9 == pytest.approx(attention)
    assert flops["all ops"] * 1e9 == pytest.approx(conv + attention)


def test_profiled_method_divides_each_groups_flops_by_its_time_and_skips_the_levers(monkeypatch):
    monkeypatch.setattr(official_speed, "group_gflops", lambda module, images: {"convolution": 2.0, "all ops": 3.0})
    monkeypatch.setattr(official_speed, "op_times", lambda run: {"convolution": run(1), "all ops": 2 * run(1)})
    entries = {"official fp32": lambda k: 100.0, "diffrep bf16": lambda k: 50.0, "diffrep bf16 compile": None}
    out = official_speed.profiled_method(entries, None, None, peaks={"fp32": 10e9, "bf16": 40e9})
    assert set(out) == {"gflop_per_step", "official fp32", "diffrep bf16"}
    assert out["official fp32"]["gflops"] == {"convolution": 20.0, "all ops": 15.0}  # 2 GFLOP in 100 ms
    assert out["diffrep bf16"]["fraction_of_peak"]["convolution"] == pytest.approx(40.0 / 40.0)


def test_markdown_tables_put_each_precision_in_its_own_table_with_ratio_and_peak_fraction():
    def row(median, ratio, fraction):
        return {"median": median, "ratio": ratio, "fraction_of_peak": fraction}

    record = {"methods": {"drl": {"gflop_per_image": 2.2, "entries": {
        "official fp32": row(40.0, 1.0, 0.4), "diffrep fp32": row(48.0, 1.2, 0.48),
        "diffrep bf16": row(80.0, 2.0, 0.2), "diffrep bf16 compile": row(90.0, 2.25, 0.225)}}}}
    fp32, bf16 = official_speed.markdown_tables(record).split("\n\n")
    assert fp32.splitlines()[0] == "| method (GFLOP / image) | official fp32 | diffrep fp32 |"
    assert bf16.splitlines()[0] == "| method (GFLOP / image) | official fp32 | diffrep bf16 | bf16 + compile |"
    assert bf16.splitlines()[2] == ("| DRL, NCSN++ + WRN-28-2, 32 px (2.20) | 40.0, x1.00, 40% | 80.0, x2.00, 20% "
                                    "| 90.0, x2.25, 22% |")
