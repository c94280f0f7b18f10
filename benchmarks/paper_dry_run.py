"""Every paper config proven to run, and costed, before anyone rents a GPU.

Usage:
    python benchmarks/paper_dry_run.py                 # every paper config (about 10 minutes on 2 cores)
    python benchmarks/paper_dry_run.py pdae_celeba64   # some of them

For each config: the full-size model is built by ``diffrep fit`` itself from the config, with the
data replaced by random images of the config's shape (``SyntheticImageDataModule``), 2 training
steps at batch 2 on the CPU, evaluation callbacks off, a checkpoint written and read back. PDAE's
pre-trained DPM is a random-weight checkpoint in the official layout (``checkpoint.pt`` +
``config.yml``), and each latent DPM reads the checkpoint its PDAE's dry run wrote, so the chain
of stages runs as a user runs it. Then, on the built model, at batch 2 in fp32:

- parameters (all, and the ones that train);
- FLOPs per training image: forward and backward of the method's loss, counted by
  ``torch.utils.flop_counter`` (matmuls and convolutions), divided by the batch;
- activation memory per image: the bytes of the tensors autograd saves for the backward pass
  (``saved_tensors_hooks``, each storage once, parameters excluded), divided by the batch;
- the paper's schedule (``max_steps`` x batch) in images and FLOPs, and its projected time and
  cost on one and on eight GPUs at the achieved FLOP/s of the one GPU measurement there is
  (``benchmarks/results/throughput-h100-b128-fp32.json``: PDAE, official MNIST U-Net, H100), eight
  GPUs assumed to scale linearly (no communication cost), at a stated price per GPU-hour.

The official DPM's ``config.yml`` is not in PDAE's repository (it comes with the released
weights), so the DPM U-Net is assumed to be Diff-AE's DDPM of the same resolution
(phizaz/diffae templates.py ``ffhq128_ddpm``: base 128, mult (1, 1, 2, 3, 4), 2 blocks,
attention at 16x16, 1 head); the table marks it. Prints a Markdown table and writes
benchmarks/results/paper_dry_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from throughput import counting_flops  # noqa: E402  (benchmarks/, on the path above)

GPU_MEASUREMENT = REPO / "benchmarks/results/throughput-h100-b128-fp32.json"
PRICE_PER_GPU_HOUR = 3.0  # USD, an H100 on demand (a stated assumption; prices vary 2-4 USD)

#: config -> the config whose checkpoint it reads (model_checkpoint / dpm_checkpoint), if any
PAPER_CONFIGS: dict[str, str | None] = {
    "dpm_mnist_official": None,
    "pdae_mnist_official": "dpm_mnist_official",
    "pdae_celeba64": "official-dpm",
    "pdae_ffhq128": "official-dpm",
    "pdae_latent_celeba64": "pdae_celeba64",
    "pdae_latent_ffhq128": "pdae_ffhq128",
    "drl_mnist": None,
    "vdrl_mnist": None,
    "drl_cifar10": None,
    "vdrl_cifar10": None,
    "diffae_ffhq128": None,
    "laplacenet_cifar10": "drl_cifar10",
    "laplacenet_cifar10_4000": "drl_cifar10",
}
CIFAR10_TRAIN = 50_000  # images in CIFAR-10's training set (the configs hold their val_size out of it)


def write_official_dpm(folder: Path, size: int) -> Path:
    """A random-weight DPM as the official PDAE release stores one (the assumed architecture above)."""
    from diffrep.nets.unet import UNet, UNetConfig

    config = UNetConfig(in_channels=3, base_channels=128, channel_mult=[1, 1, 2, 3, 4], num_res_blocks=2,
                        attention_resolutions=[size // 16], num_heads=1, image_size=size)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"ema_denoise_fn": UNet(config).state_dict()}, folder / "checkpoint.pt")
    official = {
        "train_dataset_config": {"image_size": size, "image_channel": 3},
        "diffusion_config": {"timesteps": 1000, "betas_type": "linear"},
        "denoise_fn_config": {
            "input_channel": 3, "base_channel": 128, "channel_multiplier": [1, 1, 2, 3, 4],
            "num_residual_blocks_of_a_block": 2, "attention_resolutions": [size // 16], "num_heads": 1,
            "head_channel": -1, "dropout": 0.0, "use_new_attention_order": False,
        },
    }
    (folder / "config.yml").write_text(yaml.safe_dump(official))
    return folder / "checkpoint.pt"


def is_laplacenet(config: dict[str, Any]) -> bool:
    return config["model"]["class_path"].endswith("LaplaceNet")


def data_settings(config: dict[str, Any]) -> tuple[int, int, int]:
    """(channels, image size, batch size) the config's data gives."""
    data = config["data"]
    if is_laplacenet(config):  # LaplaceNet's batches over an image datamodule (its source)
        source = data["init_args"]["source"]["init_args"]
        return int(config["model"]["init_args"]["in_channels"]), int(source["image_size"]), int(
            data["init_args"]["batch_size"])
    if isinstance(data, str):
        data = yaml.safe_load((REPO / "configs" / data).read_text())
    args, cls = data.get("init_args", {}), data["class_path"]
    default_channels = 1 if "MNIST" in cls else 3
    return int(args.get("channels", default_channels)), int(args["image_size"]), int(args["batch_size"])


def dry_config(name: str, work: Path, upstream: Path | None) -> tuple[dict[str, Any], int]:
    """The paper config with synthetic data, CPU, 2 steps, no logger; returns it and the paper's batch."""
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    channels, size, batch = data_settings(config)
    init = config["model"].setdefault("init_args", {})
    if (init.get("fast") or {}).get("compile"):
        init["fast"]["compile"] = False  # compilation is a GPU speed-up; the dry run proves the model, not the compiler
    if upstream is not None and "start" in init:  # LaplaceNet's encoder
        init["start"]["checkpoint"] = str(upstream)
    elif upstream is not None:
        init["model_checkpoint" if "model_checkpoint" in init else "dpm_checkpoint"] = str(upstream)
    synthetic = {"class_path": "diffrep.datamodules.SyntheticImageDataModule",
                 "init_args": {"channels": channels, "image_size": size, "batch_size": 2, "num_images": 8,
                               "num_test": 4, "val_size": 2}}
    if is_laplacenet(config):  # one label per class of 64 random images, batches of 2 (1 labelled)
        synthetic["init_args"].update(num_images=64)
        config["trainer"]["max_steps"] = laplacenet_paper_steps(config)
        config["data"]["init_args"].update(source=synthetic, labels_per_class=1, batch_size=2, labelled_batch_size=1,
                                           warmup_epochs=1, warmup_passes=1, num_workers=0)
    else:
        config["data"] = synthetic
    trainer = config["trainer"]
    schedule = {"max_steps": int(trainer["max_steps"]), "accumulate": int(trainer.get("accumulate_grad_batches", 1)),
                "devices": trainer.get("devices", 1)}
    trainer.update(accelerator="cpu", devices=1, strategy="auto", max_steps=2, logger=False, limit_val_batches=0,
                   num_sanity_val_steps=0, enable_progress_bar=False, enable_model_summary=False,
                   default_root_dir=str(work / name), val_check_interval=None, check_val_every_n_epoch=None)
    trainer.pop("num_nodes", None)
    config["evaluate"] = False
    return config, batch * schedule["accumulate"] * (schedule["devices"] if isinstance(schedule["devices"], int) else 1)


def laplacenet_paper_steps(config: dict[str, Any]) -> int:
    """LaplaceNet's optimiser steps: the warm-up (epochs x passes x labelled batches), then one pass over the
    unlabelled images per epoch in batches of batch - labelled_batch."""
    data, epochs = config["data"]["init_args"], int(config["trainer"]["max_epochs"])
    source = data["source"]["init_args"]
    n_train = CIFAR10_TRAIN - int(source.get("val_size", 0))
    labelled = int(data["labels_per_class"]) * int(config["model"]["init_args"].get("num_classes", 10))
    batch, labelled_batch = int(data["batch_size"]), int(data["labelled_batch_size"])
    warmup = int(data.get("warmup_epochs", 10))
    return (warmup * int(data.get("warmup_passes", 10)) * (labelled // batch)
            + (epochs - warmup) * ((n_train - labelled) // (batch - labelled_batch)))


def training_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The method's loss; for LaplaceNet (a classifier) the cross-entropy of one augmented view."""
    if hasattr(model, "loss"):
        return model.loss(x)
    return torch.nn.functional.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long))


def measure(model: torch.nn.Module, batch: Any) -> dict[str, float]:
    """Parameters, FLOPs and saved-activation bytes of one training step's loss at this batch (attention on
    its unfused path, ``throughput.counting_flops``: the bytes are those of the attention matrix, an upper
    bound for the fused kernel's)."""
    model = model.float().train()
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    x = x[:, 0] if x.ndim == 5 else x  # LaplaceNet's (batch, views, C, H, W): one view
    n = x.shape[0]
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with counting_flops() as flops, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = training_loss(model, x)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "gflop_per_image": flops.get_total_flops() / n / 1e9,
        "activation_mb_per_image": sum(saved.values()) / n / 2**20,
    }


def achieved_tflops() -> tuple[float, str]:
    """FLOP/s of the one GPU training measurement in the repository, and where it comes from."""
    result = json.loads(GPU_MEASUREMENT.read_text())
    pdae = result["results"]["pdae"]
    tflops = pdae["train_images_per_s"] * pdae["gflop_per_image"] / 1e3
    setting = result["setting"]
    source = (f"{setting['device']}, PDAE official-MNIST U-Net, batch {setting['batch']}, precision "
              f"{setting['precision']}: {tflops:.1f} TFLOP/s achieved = {100 * pdae['mfu']:.1f}% MFU of a measured "
              f"{setting['matmul_peak_tflops']:.0f} TFLOP/s peak")
    return tflops, source


def dry_run(name: str, work: Path, upstream: Path | None) -> dict[str, Any]:
    from diffrep.cli import DiffrepCLI

    config, paper_batch = dry_config(name, work, upstream)
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    cli = DiffrepCLI(["fit", "--config", str(path)])
    fit_s = time.perf_counter() - started
    checkpoint = work / name / "checkpoints" / "last.ckpt"
    assert cli.trainer.global_step == 2, cli.trainer.global_step
    reloaded = type(cli.model).load_from_checkpoint(str(checkpoint), map_location="cpu", weights_only=False)
    batch = next(iter(cli.datamodule.train_dataloader()))
    numbers = measure(reloaded, batch)
    images = config_max_steps(name) * paper_batch * aug_num(name)
    return {"config": name, "checkpoint": str(checkpoint), "fit_s": fit_s, "paper_batch": paper_batch,
            "paper_images": images, "paper_pflop": numbers["gflop_per_image"] * images / 1e6, **numbers}


def config_max_steps(name: str) -> int:
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    return laplacenet_paper_steps(config) if is_laplacenet(config) else int(config["trainer"]["max_steps"])


def aug_num(name: str) -> int:
    """Training images per batch item: LaplaceNet trains on aug_num views of each."""
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    return int(config["data"]["init_args"].get("aug_num", 1)) if is_laplacenet(config) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=list(PAPER_CONFIGS), help="names under configs/")
    parser.add_argument("--work", type=Path, default=None, help="a folder for the runs (default: a temporary one)")
    opts = parser.parse_args()
    unknown = [c for c in opts.configs if c not in PAPER_CONFIGS]
    if unknown:
        print(f"error: {', '.join(unknown)} not among the paper configs: {', '.join(PAPER_CONFIGS)}", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("WANDB_MODE", "disabled")
    from diffrep import quiet

    quiet.install()
    work = opts.work or Path(tempfile.mkdtemp(prefix="paper_dry_run_"))
    work.mkdir(parents=True, exist_ok=True)
    tflops, source = achieved_tflops()
    rows, done = [], {}
    for name in PAPER_CONFIGS:
        needs = PAPER_CONFIGS[name]
        if name not in opts.configs and name not in {PAPER_CONFIGS[c] for c in opts.configs}:
            continue
        upstream = None
        if needs == "official-dpm":
            size = 64 if "celeba64" in name else 128
            upstream = write_official_dpm(work / f"official_dpm_{size}", size)
        elif needs is not None:
            if needs not in done:
                done[needs] = dry_run(needs, work, _upstream_of(needs, work))
            upstream = Path(done[needs]["checkpoint"])
        if name not in done:
            done[name] = dry_run(name, work, upstream)
        row = done[name]
        hours = row["gflop_per_image"] * row["paper_images"] / (tflops * 1e3) / 3600
        row.update(gpu_hours=hours, hours_on_8=hours / 8, cost_usd=hours * PRICE_PER_GPU_HOUR,
                   assumed_dpm=needs == "official-dpm")
        if name in opts.configs:
            rows.append(row)
    print(f"\nProjection at {source}; {PRICE_PER_GPU_HOUR:.0f} USD per GPU-hour; 8 GPUs assumed to scale linearly.")
    print("| config | params (trainable) | GFLOP / training image | activations MB / image | paper schedule "
          "(images) | 1 GPU (h) | 8 GPUs (h) | cost (USD) | dry run (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mark = " (DPM assumed)" if r["assumed_dpm"] else ""
        print(f"| `{r['config']}`{mark} | {r['params'] / 1e6:.1f}M ({r['trainable'] / 1e6:.1f}M) | "
              f"{r['gflop_per_image']:.2f} | {r['activation_mb_per_image']:.1f} | {r['paper_images'] / 1e6:.1f}M | "
              f"{r['gpu_hours']:.1f} | {r['hours_on_8']:.1f} | {r['cost_usd']:.0f} | {r['fit_s']:.0f} |")
    out = REPO / "benchmarks/results/paper_dry_run.json"
    if set(opts.configs) == set(PAPER_CONFIGS):
        out.write_text(json.dumps({"rows": rows, "projection": source, "price_per_gpu_hour": PRICE_PER_GPU_HOUR,
                                   "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                                   "date": time.strftime("%Y-%m-%d")}, indent=1))
        print(f"wrote {out}")


def _upstream_of(name: str, work: Path) -> Path | None:
    needs = PAPER_CONFIGS[name]
    if needs == "official-dpm":
        size = 64 if "celeba64" in name else 128
        return write_official_dpm(work / f"official_dpm_{size}", size)
    return None


if __name__ == "__main__":
    main()
