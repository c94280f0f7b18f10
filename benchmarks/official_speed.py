"""Each method's training step against its official code's, side by side in one process.

Usage: python benchmarks/official_speed.py [--pdae PATH] [--drl PATH] [--diffae PATH]
           [--batch 32] [--steps 5] [--rounds 3] [--levers] [--precisions fp32 bf16] [--profile]
       python benchmarks/official_speed.py --table-only [--results FILE]

PATH: the same local copies ``benchmarks/official_parity.py`` takes (ckczzj/PDAE,
korabs-x/representation_score_based, phizaz/diffae; the code is imported from there at run time).
The networks are the parity harness's (the same architecture and weights on both sides, CPU-sized:
PDAE's 64 px DPM with the CELEBA64 encoder, DRL's NCSN++ with the WRN-28-2 at 32 px, Diff-AE's
BeatGANs autoencoder at 32 px). Entries, per method:

- ``official fp32``: the official training step as its code runs it (its loss, Adam, EMA), fp32,
  its only precision;
- ``diffrep fp32`` / ``diffrep bf16``: diffrep's LightningModule in a Lightning ``Trainer``, as a user
  runs it (``precision`` 32-true / bf16-mixed; Adam fused, EMA inside the step); bf16 only where the CPU
  computes it natively (``--precisions`` to choose): elsewhere it is emulated and the target is fp32's;
- with ``--levers`` also ``diffrep <precision> channels_last`` and ``diffrep <precision> compile``: the
  config's ``fast`` options on the network they act on; and ``diffrep <precision> unfused attention``:
  attention by the unfused matmuls (``sdpa_kernel(MATH)``), what it ran before the attention blocks gave the
  CPU's fused kernel its layout.

Each round times ``--steps`` steps of every entry in turn (the official entry first, then diffrep's)
after one untimed step per entry (warm-up rounds: ``--warmup``); img/s per round, the median over
rounds and the ratio to the official median. Forward + backward FLOPs per image come from torch's
FLOP counter on diffrep's module (eager, fp32 shapes); with the matmul peak of this CPU in fp32 and
bf16 (``throughput.matmul_peak``) each entry's achieved GFLOP/s is a fraction of the limit.
``--profile`` times nothing: it profiles the plain steps (official fp32, diffrep's in each precision;
``op_times``), sums the self time of the convolutions, the attention and the dropout masks, to say what
the two codes share and where they can differ, and divides each group's FLOPs by its time: how far each
group runs from the matmul peak. Results: benchmarks/results/official_speed.json and
official_speed_profile.json (with ``-cpu-avx2`` on a CPU without native bf16); the tables: docs/speed.md
(``--table-only`` prints them from a results file).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader, TensorDataset

from diffrep.cli import cpu_has_fast_bf16

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from throughput import matmul_peak, training_flops_per_image, training_step_flops  # noqa: E402  (on the path above)

#: an entry: k -> seconds for k timed training steps (after its own warm-up)
Timed = Callable[[int], float]


class StepClock(L.Callback):
    """Seconds from the end of the first step of a fit (untimed: Trainer start-up, first-call
    costs) to the end of its last."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.seconds = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        now = time.perf_counter()
        if trainer.global_step == 1:
            self.start = now
        elif self.start is not None:
            self.seconds = now - self.start


def trainer_entry(make_module: Callable[[], L.LightningModule], images: torch.Tensor, precision: str,
                  context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> Timed:
    """diffrep's step through a Trainer: each call fits a fresh Trainer for k + 1 steps on the same
    module and times the last k (inside ``context``)."""
    module = make_module()

    def run(k: int) -> float:
        clock = StepClock()
        trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=k + 1, precision=precision, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0, callbacks=[clock])
        repeated = images.repeat(k + 1, 1, 1, 1)  # the same batch at every step, as the official loops
        loader = DataLoader(TensorDataset(repeated, torch.zeros(len(repeated), dtype=torch.long)),
                            batch_size=len(images))
        with context():
            trainer.fit(module, train_dataloaders=loader)
        return clock.seconds

    return run


def with_fast_paths(make_module: Callable[[], L.LightningModule], **fast: bool) -> Callable[[], L.LightningModule]:
    """``make_module`` with the config's ``fast`` options set (channels_last, compile) on the network they
    act on (``fast_path_network``: PDAE's shift decoder, the others' denoiser), as ``fast: {...}`` would."""
    from diffrep.lightning_modules.settings import FastPaths

    def make() -> L.LightningModule:
        module = make_module()
        module.setup_fast_paths(FastPaths(**fast))
        return module

    return make


PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}
UNFUSED = "unfused attention"


def diffrep_entries(make_module: Callable[[], L.LightningModule], images: torch.Tensor, precisions: list[str],
                    levers: bool) -> dict[str, Timed]:
    """diffrep's step in each of ``precisions`` and, with ``--levers``, again with each speed option of the
    config (channels_last, compile) in each (issue 43), and with attention on its unfused path (what the
    attention blocks ran before they gave the CPU's fused kernel its layout: that lever's worth)."""
    entries = {f"diffrep {p}": trainer_entry(make_module, images, PRECISIONS[p]) for p in precisions}
    for p in precisions if levers else []:
        for lever in ("channels_last", "compile"):
            entries[f"diffrep {p} {lever}"] = trainer_entry(with_fast_paths(make_module, **{lever: True}), images,
                                                            PRECISIONS[p])
        entries[f"diffrep {p} {UNFUSED}"] = trainer_entry(make_module, images, PRECISIONS[p],
                                                          lambda: sdpa_kernel(SDPBackend.MATH))
    return entries


def loop_entry(step: Callable[[], None]) -> Timed:
    def run(k: int) -> float:
        step()  # untimed, as the Trainer entries' first step
        start = time.perf_counter()
        for _ in range(k):
            step()
        return time.perf_counter() - start

    return run


#: ``--profile``: the ops whose self time is summed per group (everything else is in "all ops" only)
OP_GROUPS = {
    "convolution": ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
                    "aten::convolution"),
    "attention": ("aten::bmm", "aten::baddbmm", "aten::_softmax", "aten::_softmax_backward_data", "aten::where",
                  "aten::all", "aten::isneginf", "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
    "dropout mask": ("aten::bernoulli_",),
}
#: the FLOP counter's ops behind the groups that do arithmetic (attention counted on its unfused path)
FLOP_GROUPS = {"convolution": ("convolution", "convolution_backward", "_convolution"),
               "attention": ("bmm", "baddbmm")}


def op_times(run: Timed) -> dict[str, float]:
    """Milliseconds per step of each ``OP_GROUPS`` group and of all ops (self CPU time) over one call of an
    entry, ``run(1)``: 2 steps, the untimed one and one more, on both the official and diffrep's side; after
    one such call unprofiled (first-call costs: oneDNN's kernel choice, allocations)."""
    steps = 2
    run(1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(1)
    events = prof.key_averages()
    groups = {group: sum(e.self_cpu_time_total for e in events if e.key in names) / 1e3 / steps
              for group, names in OP_GROUPS.items()}
    return {**groups, "all ops": sum(e.self_cpu_time_total for e in events) / 1e3 / steps}


def group_gflops(module: L.LightningModule, images: torch.Tensor) -> dict[str, float]:
    """GFLOP of one training step of the batch in each ``FLOP_GROUPS`` group and in all: with the
    profile's milliseconds, each group's achieved rate, against the matmul peak."""
    counter = training_step_flops(module, images)
    counts = {str(op).split(".")[-1]: n for op, n in counter.get_flop_counts()["Global"].items()}  # aten.bmm -> bmm
    groups = {group: sum(counts.get(op, 0) for op in ops) / 1e9 for group, ops in FLOP_GROUPS.items()}
    return {**groups, "all ops": counter.get_total_flops() / 1e9}


def profiled_method(entries: dict[str, Timed], module: L.LightningModule, images: torch.Tensor,
                    peaks: dict[str, float]) -> dict:
    """``--profile``: each plain entry's ms per step by op group and the GFLOP/s each group achieves (its
    FLOPs per step over its time), a fraction of the precision's matmul peak: where the step is far from
    the limit."""
    flops = group_gflops(module, images)
    out: dict = {"gflop_per_step": flops}
    for entry in (e for e in entries if not e.endswith(("channels_last", "compile", UNFUSED))):
        ms = op_times(entries[entry])
        peak = peaks["bf16" if "bf16" in entry else "fp32"] / 1e9
        rates = {group: flops[group] / (ms[group] / 1e3) for group in flops if ms.get(group)}
        out[entry] = {"ms_per_step": ms, "gflops": rates,
                      "fraction_of_peak": {group: rate / peak for group, rate in rates.items()}}
    return out


def machine() -> str:
    """The CPU's model name, threads and whether it computes bf16 natively."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or platform.machine())
    return f"{name}, {torch.get_num_threads()} threads, {'native' if cpu_has_fast_bf16() else 'emulated'} bf16"


def alternate(entries: dict[str, Timed], rounds: int, steps: int, warmup: int, batch: int) -> dict[str, list[float]]:
    """img/s of every entry in every round, the entries visited in turn within a round."""
    rates: dict[str, list[float]] = {name: [] for name in entries}
    for r in range(warmup + rounds):
        for name, run in entries.items():
            seconds = run(steps)
            if r >= warmup:
                rates[name].append(batch * steps / seconds)
    return rates


# ------------------------------------------------------------------ the three methods
Setup = tuple[dict[str, Timed], L.LightningModule, torch.Tensor]  # the entries, diffrep's module, its batch


def drl_setup(path: Path, batch: int, precisions: list[str], levers: bool) -> Setup:
    sys.path.insert(0, str(path / "score_sde_pytorch") if (path / "score_sde_pytorch").is_dir() else str(path))
    from official_parity_drl import load_official, official_network, official_step, ours_like, small_config

    config = small_config(dropout=0.0)
    official = official_network(config).train()
    step, _ = official_step(config, official, fused=False)
    images = torch.rand(batch, 3, 32, 32)

    def ours() -> L.LightningModule:
        model = ours_like(config)
        load_official(model, official)
        return model

    entries = {"official fp32": loop_entry(lambda: step(images)),
               **diffrep_entries(ours, images * 2 - 1, precisions, levers)}
    return entries, ours(), images * 2 - 1


def diffae_setup(path: Path, batch: int, precisions: list[str], levers: bool) -> Setup:
    from official_parity_diffae import SIZE, load_official_weights, name_map, official_config, official_step, ours_like

    conf = official_config(path)
    model = conf.make_model_conf().make_model().train()
    step = official_step(conf, model, copy.deepcopy(model), fused=False, ema_decay=conf.ema_decay)
    images = torch.rand(batch, 3, SIZE, SIZE) * 2 - 1

    def ours():
        diffae = ours_like(conf)
        load_official_weights(diffae, model, name_map(diffae, model))
        return diffae

    entries = {"official fp32": loop_entry(lambda: step(images, torch.randint(0, conf.T, (batch,)))),
               **diffrep_entries(ours, images, precisions, levers)}
    return entries, ours(), images


def pdae_setup(path: Path, batch: int, precisions: list[str], levers: bool) -> Setup:
    sys.path.insert(0, str(path))
    from official_parity_pdae import SIZE, official_parts, official_step, ours_like

    folder, encoder, decoder, diffusion = official_parts()
    step, _, _ = official_step(diffusion, encoder, decoder, fused=False, ema_decay=0.9999)
    images = torch.rand(batch, 3, SIZE, SIZE) * 2 - 1
    entries = {"official fp32": loop_entry(lambda: step(images)),
               **diffrep_entries(lambda: ours_like(folder), images, precisions, levers)}
    return entries, ours_like(folder), images


SETUPS = {"pdae": pdae_setup, "drl": drl_setup, "diffae": diffae_setup}


def timed_method(name: str, entries: dict[str, Timed], module: L.LightningModule, images: torch.Tensor,
                 args: argparse.Namespace, peaks: dict[str, float]) -> dict:
    """The alternating rounds of one method's entries: img/s, medians, ratios to the official step and
    fractions of the matmul peak, printed and returned."""
    flops = training_flops_per_image(module, images)
    rates = alternate(entries, args.rounds, args.steps, args.warmup, args.batch)
    official = statistics.median(rates["official fp32"])
    rows = {}
    for entry, values in rates.items():
        median = statistics.median(values)
        peak = peaks["bf16" if "bf16" in entry else "fp32"]
        rows[entry] = {"img_per_s": values, "median": median, "ratio": median / official,
                       "gflops": median * flops / 1e9, "fraction_of_peak": median * flops / peak}
    print(f"{name}: {flops / 1e9:.2f} GFLOP per image (forward + backward)")
    for entry, row in rows.items():
        print(f"  {entry:26s} {row['median']:7.1f} img/s  x{row['ratio']:.2f}  {row['gflops']:6.1f} GFLOP/s "
              f"({100 * row['fraction_of_peak']:.0f}% of the matmul peak)")
    return {"gflop_per_image": flops / 1e9, "entries": rows}


METHOD_LABELS = {"pdae": "PDAE, 64 px DPM + CELEBA64 encoder", "drl": "DRL, NCSN++ + WRN-28-2, 32 px",
                 "diffae": "Diff-AE, BeatGANs autoencoder, 32 px"}


def markdown_tables(record: dict) -> str:
    """docs/speed.md's tables of a timing record, one per precision: img/s, the ratio to the official
    fp32 step and the fraction of that precision's matmul peak, for diffrep's step and each lever timed."""
    tables = []
    for precision in (p for p in PRECISIONS if any(f"diffrep {p}" in m["entries"] for m in record["methods"].values())):
        levers = [f"diffrep {precision}", *(f"diffrep {precision} {lever}"
                                            for lever in (UNFUSED, "channels_last", "compile"))]
        timed = [e for e in levers if any(e in m["entries"] for m in record["methods"].values())]
        header = ["method (GFLOP / image)", "official fp32",
                  *(e if e == levers[0] else e.replace(f"diffrep {precision} ", f"{precision} + ") for e in timed)]
        rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, result in record["methods"].items():
            cells = [f"{METHOD_LABELS.get(method, method)} ({result['gflop_per_image']:.2f})"]
            for entry in ("official fp32", *timed):
                row = result["entries"].get(entry)
                cells.append("" if row is None else
                             f"{row['median']:.1f}, x{row['ratio']:.2f}, {100 * row['fraction_of_peak']:.0f}%")
            rows.append("| " + " | ".join(cells) + " |")
        tables.append("\n".join(rows))
    return "\n\n".join(tables)


def profile_table(record: dict) -> str:
    """docs/speed.md's table of a ``--profile`` record: ms per step of each op group and, for the groups
    that do arithmetic, the fraction of the precision's matmul peak they reach."""
    rows = ["| method | step | convolution ms (of peak) | attention ms (of peak) | dropout masks ms | other ops ms "
            "| all ops ms |", "|---|---|---:|---:|---:|---:|---:|"]
    for method, result in record["methods"].items():
        for entry, profiled in result.items():
            if entry == "gflop_per_step":
                continue
            ms, fraction = profiled["ms_per_step"], profiled["fraction_of_peak"]
            other = ms["all ops"] - sum(ms[group] for group in OP_GROUPS)
            cells = [f"{ms[g]:.0f} ({100 * fraction[g]:.0f}%)" if g in fraction else f"{ms[g]:.0f}"
                     for g in ("convolution", "attention")]
            rows.append(f"| {METHOD_LABELS.get(method, method).split(',')[0]} | {entry} | {cells[0]} | {cells[1]} "
                        f"| {ms['dropout mask']:.0f} | {other:.0f} | {ms['all ops']:.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in SETUPS:
        parser.add_argument(f"--{name}", type=Path, help=f"a local copy of the official {name} repository")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per entry and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--levers", action="store_true",
                        help="also diffrep's step with channels_last and with torch.compile (issue 43's levers)")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS),
                        help="diffrep's precisions to time (default: fp32 and bf16 where this CPU has native bf16, "
                             "fp32 alone where bf16 is emulated)")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the timing rounds: where each plain step spends its time "
                             "(torch.profiler: ms per step of the convolutions, attention, dropout masks, all ops; "
                             "the GFLOP/s of each) to "
                             "official_speed_profile[-cpu-avx2].json")
    parser.add_argument("--table-only", action="store_true",
                        help="time nothing: print docs/speed.md's tables of the results file "
                             "(with --profile: the profile's)")
    parser.add_argument("--results", type=Path,
                        help="default: benchmarks/results/official_speed.json on a CPU with native bf16, "
                             "official_speed-cpu-avx2.json on one without")
    args = parser.parse_args(argv)
    native = cpu_has_fast_bf16()  # the CLI's own test for falling back to fp32
    precisions = args.precisions or (["fp32", "bf16"] if native else ["fp32"])
    stem = "official_speed_profile" if args.profile else "official_speed"
    results = args.results or HERE / f"results/{stem}{'' if native else '-cpu-avx2'}.json"
    if args.table_only:
        if not results.is_file():
            parser.error(f"{results} does not exist; run the benchmark first or name a results file with --results")
        record = json.loads(results.read_text())
        print(profile_table(record) if args.profile else markdown_tables(record))
        return
    chosen = {name: getattr(args, name) for name in SETUPS if getattr(args, name) is not None}
    if not chosen:
        parser.error("name at least one official copy: --pdae PATH, --drl PATH, --diffae PATH")
    for name, path in chosen.items():
        if not path.is_dir():
            parser.error(f"--{name} {path} is not a folder; give a local copy of the official repository")
    from official_parity import forget_official_modules

    from diffrep import quiet

    quiet.install()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # a Trainer per round: no start-up lines

    cpu = torch.device("cpu")
    record = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "threads": torch.get_num_threads(),
              "batch": args.batch, "methods": {}}
    peaks = {p: matmul_peak(cpu, p) for p in {"fp32", *precisions}}  # an emulated bf16 peak takes minutes
    record.update(precisions=precisions, matmul_peak_gflops={k: v / 1e9 for k, v in peaks.items()})
    if not args.profile:
        record.update(steps=args.steps, rounds=args.rounds)
    for name, path in chosen.items():
        entries, module, images = SETUPS[name](path.resolve(), args.batch, precisions, args.levers and not args.profile)
        if args.profile:
            record["methods"][name] = profiled_method(entries, module, images, peaks)
            print(name, json.dumps(record["methods"][name], indent=1))
        else:
            record["methods"][name] = timed_method(name, entries, module, images, args, peaks)
        results.write_text(json.dumps(record, indent=1))  # after each method: a later failure keeps it
        forget_official_modules()
        sys.path[:] = [p for p in sys.path if p != str(path.resolve())]
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
