"""Training and sampling throughput of diffrep's methods, FLOPs per image and MFU, on CPU or GPU.

Usage:
    python benchmarks/throughput.py                                  # CPU demo U-Net, batch 64
    python benchmarks/throughput.py --arch official-mnist --batch 32  # issue 6's reference step
    python benchmarks/throughput.py --arch official-mnist --device cuda --precision bf16 --compile

``official-mnist`` is the official PDAE MNIST U-Net (32x32x1, base 64, mult [1,2,2,4], 2 blocks,
no attention outside the middle block) with latent 512 and the conv encoder at 32x32 (three
stride-2 stages: one fewer than at 64x64). Training images/s times forward, backward, Adam and
the EMA update after warm-up; sampling images/s times a DDIM decode of ``--sample-steps`` steps.
FLOPs come from ``torch.utils.flop_counter`` (matmuls and convolutions, forward and backward);
MFU divides the achieved FLOP/s by a measured peak of the same dtype on the same device: the best
of square matmuls over several sizes and repeats, or the best step's FLOP/s where that is higher
(so MFU never exceeds 100%; the JSON's peak_source says which).
Prints a table and writes benchmarks/results/throughput[-<tag>].json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from diffrep.diffusion.sampling import ddim_sample
from diffrep.lightning_modules import DPM, PDAE
from diffrep.nets.unet import UNetConfig

ARCHS = {
    "cpu-demo": (UNetConfig(base_channels=16, channel_mult=[1, 2, 4], num_res_blocks=1, num_groups=8), 32),
    "official-mnist": (UNetConfig(base_channels=64, channel_mult=[1, 2, 2, 4], num_res_blocks=2, num_groups=32), 512),
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model, optimizer, batch: torch.Tensor, precision: str) -> None:
    """One optimiser step as Lightning runs it (forward, backward, Adam, EMA)."""
    with autocast(batch.device, precision):
        loss = model.loss(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if model.ema is not None:
        model.ema.update()


def time_training(model, batch: torch.Tensor, steps: int, warmup: int, precision: str) -> float:
    """Seconds per optimiser step after ``warmup`` steps (which also absorb compilation)."""
    optimizer = model.configure_optimizers()
    model.train()
    for _ in range(warmup):
        train_step(model, optimizer, batch, precision)
    synchronize(batch.device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, batch, precision)
    synchronize(batch.device)
    return (time.perf_counter() - start) / steps


@contextlib.contextmanager
def counting_flops() -> Iterator[FlopCounterMode]:
    """torch's FLOP counter with attention on its unfused path: the counter has no formula for the CPU's
    fused (flash) attention kernel and would count it as 0 FLOPs; the unfused path's matmuls are the
    same arithmetic."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        yield counter


def training_step_flops(model, batch: torch.Tensor) -> FlopCounterMode:
    """The counter of one training step's forward + backward (eager, fp32 shapes; ``counting_flops``), its
    totals per op readable afterwards; the gradients are cleared."""
    model.train()
    with counting_flops() as counter:
        model.loss(batch).backward()
    model.zero_grad(set_to_none=True)
    return counter


def training_flops_per_image(model, batch: torch.Tensor) -> float:
    """Forward + backward FLOPs of one training step (eager, fp32 shapes), per image."""
    return training_step_flops(model, batch).get_total_flops() / batch.shape[0]


def eps_fn_of(model, batch: torch.Tensor):
    """The network evaluation DDIM calls: the DPM's eps, or PDAE's guided eps for the batch's codes."""
    if isinstance(model, PDAE):
        return model.guided_eps_fn(model.encode(batch))
    return model.eps


def time_sampling(model, batch: torch.Tensor, steps: int, precision: str) -> float:
    """Seconds for one DDIM decode of the batch (after a one-step warm-up)."""
    model.eval()
    with torch.no_grad(), autocast(batch.device, precision):
        eps_fn = eps_fn_of(model, batch)
        noise = torch.randn_like(batch)
        ddim_sample(eps_fn, model.schedule, noise, 2)
        synchronize(batch.device)
        start = time.perf_counter()
        ddim_sample(eps_fn, model.schedule, noise, steps)
        synchronize(batch.device)
    return time.perf_counter() - start


def matmul_peak(device: torch.device, precision: str, repeats: int = 3) -> float:
    """The best FLOP/s of square matmuls over several sizes and repeats, in the dtype the step
    computes in. One size once (the old 1024^3 on the CPU) sat below what the conv kernels reach
    and gave MFUs above 100%."""
    sizes = (2048, 4096, 8192) if device.type == "cuda" else (256, 512, 1024, 2048)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        # ~0.3 s a repeat: a fixed FLOP count took minutes where bf16 is emulated (50x slower)
        reps = max(2, int(0.3 / max(time.perf_counter() - start, 1e-6))) if device.type == "cpu" else 50
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(reps):
                a @ b
            synchronize(device)
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def build_models(arch: str, device: torch.device, channels_last: bool, compile: bool) -> dict:
    unet, latent = ARCHS[arch]
    dpm = DPM(unet=unet, fast={"channels_last": channels_last, "compile": compile})
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "dpm.ckpt"
        torch.save({"state_dict": DPM(unet=unet).state_dict(), "diffrep": dpm.checkpoint_metadata()}, ckpt)
        pdae = PDAE(str(ckpt), latent_dim=latent, fast={"channels_last": channels_last, "compile": compile})
    return {"dpm": dpm.to(device), "pdae": pdae.to(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="cpu-demo")
    parser.add_argument("--methods", nargs="+", default=["dpm", "pdae"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--flops-batch", type=int, default=8, help="batch of the FLOP count (per image, so any)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=None, help="default: 1 eager, 3 compiled")
    parser.add_argument("--sample-steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", nargs="?", const=True, default=False,
                        help="torch.compile; optionally a mode, e.g. reduce-overhead (CUDA graphs)")
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    unet, _ = ARCHS[args.arch]
    batch = torch.rand(args.batch, unet.in_channels, unet.image_size, unet.image_size, device=device) * 2 - 1
    models = build_models(args.arch, device, args.channels_last, args.compile)
    peak = matmul_peak(device, args.precision)
    warmup = args.warmup if args.warmup is not None else (3 if args.compile else 1)
    # FLOPs are counted on eager fp32 copies (a compiled module hides its ops from the counter).
    eager = build_models(args.arch, device, False, False) if args.compile or args.channels_last else models
    results = {}
    for name in args.methods:
        model = models[name]
        flops = training_flops_per_image(eager[name], batch[: args.flops_batch])
        start = time.perf_counter()
        seconds = time_training(model, batch, args.steps, warmup, args.precision)
        warm_seconds = time.perf_counter() - start - seconds * args.steps
        sample_seconds = time_sampling(model, batch, args.sample_steps, args.precision)
        images_per_s = args.batch / seconds
        results[name] = {
            "train_images_per_s": images_per_s,
            "s_per_step": seconds,
            "warmup_s": warm_seconds,
            "sample_images_per_s": args.batch / sample_seconds,
            "sample_steps": args.sample_steps,
            "gflop_per_image": flops / 1e9,
            "achieved_flops": flops * images_per_s,
        }
    # A step that beats the measured matmul peak proves the peak too low: the peak is then the best
    # FLOP/s seen, so no MFU exceeds 100%, and the setting says which bound was used.
    achieved = max(r["achieved_flops"] for r in results.values())
    peak_source = "matmul" if achieved <= peak else "achieved (above the matmul peak)"
    peak = max(peak, achieved)
    for r in results.values():
        r["mfu"] = r.pop("achieved_flops") / peak
    setting = {
        "arch": args.arch, "batch": args.batch, "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or "cpu", "threads": torch.get_num_threads(), "precision": args.precision,
        "channels_last": args.channels_last, "compile": args.compile, "peak_tflops": peak / 1e12,
        "peak_source": peak_source,
        "torch": torch.__version__,
    }
    print(json.dumps(setting))
    print(f"{'method':8} {'train img/s':>12} {'s/step':>8} {'warm-up s':>10} "
          f"{'sample img/s':>13} {'GFLOP/img':>10} {'MFU':>6}")
    for name, r in results.items():
        print(
            f"{name:8} {r['train_images_per_s']:12.1f} {r['s_per_step']:8.4f} {r['warmup_s']:10.1f} "
            f"{r['sample_images_per_s']:13.1f} {r['gflop_per_image']:10.2f} {r['mfu']:6.1%}"
        )
    out = Path(__file__).parent / "results" / f"throughput{'-' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"setting": setting, "results": results}, indent=2))


if __name__ == "__main__":
    main()
