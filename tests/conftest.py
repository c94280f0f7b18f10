"""Shared fixtures: tiny networks, the digits data set, the tiny models trained once per session
(a DPM, a PDAE on it, a DRL), and ``run_cli``: the real ``diffrep`` entry point in this process."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: one thread per worker (and its subprocesses)
    os.environ["OMP_NUM_THREADS"] = "1"

import lightning as L
import pytest
import torch

from diffrep import quiet
from diffrep.datamodules import DigitsDataModule
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import DPM
from diffrep.nets.unet import UNetConfig

REPO = Path(__file__).resolve().parents[1]
quiet.install()
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def tiny_unet_config(channels: int = 1, size: int = 16) -> UNetConfig:
    return UNetConfig(
        in_channels=channels, image_size=size, base_channels=16, channel_mult=[1, 2],
        num_res_blocks=1, attention_resolutions=[], num_groups=8,
    )


def quiet_trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    """A CPU trainer with no logger, progress bar or checkpointing unless asked for."""
    defaults = dict(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=str(tmp_path), num_sanity_val_steps=0, limit_val_batches=0,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


def fit_plain(model, datamodule, steps: int) -> list[float]:
    """``steps`` optimizer steps of ``model.loss`` in a plain torch loop (no Trainer): for tests of
    what a method learns, where Lightning's per-step bookkeeping would be most of the time."""
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    losses: list[float] = []
    model.train()
    while len(losses) < steps:
        for batch in datamodule.train_dataloader():
            loss = model.loss(batch[0])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if getattr(model, "ema", None) is not None:
                model.ema.update()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def digits(batch_size: int = 64, image_size: int = 16, **kwargs) -> DigitsDataModule:
    return DigitsDataModule(image_size=image_size, batch_size=batch_size, val_size=100, **kwargs)


TINY_AUTOENCODER = """
seed_everything: 0
model:
  class_path: diffrep.lightning_modules.Autoencoder
  init_args:
    image_shape: [1, 16, 16]
    latent_dim: 8
    encoder: {{kind: conv, channels: [16, 32], num_groups: 8, num_heads: 1}}
    decoder_channels: [32, 16]
    optimisation: {{lr: 3.0e-3}}
data: {data}
trainer:
  default_root_dir: {root}
  max_steps: {max_steps}
  logger: false
  enable_progress_bar: false
  limit_val_batches: 0
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {root}/checkpoints, save_last: true, save_top_k: 0}}
"""


def write_tiny_autoencoder_config(path: Path, root: Path, max_steps: int) -> Path:
    """A CLI config of a tiny autoencoder on 16x16 digits: the quickest real `diffrep fit`."""
    path.write_text(TINY_AUTOENCODER.format(data=REPO / "configs/data/digits.yaml", root=root, max_steps=max_steps))
    return path


def run_cli(
    *args: str, cwd: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``diffrep ARGS`` in this process (a subprocess costs ~10 s of imports): (exit code, stdout,
    stderr). An exception that is not a user error propagates, as it would print a traceback."""
    from diffrep.cli import main

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = 0
    try:
        main(list(map(str, args)))
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


PDAE_ENCODER = {"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1}


def with_defaults(defaults: dict, given: dict) -> dict:
    """``given`` over ``defaults``, one level deep for settings groups (dicts), so a test names only what it
    changes: ``make_drl(code={"time_dependent": True})`` keeps the helper's 8-d code (an encoder given
    replaces the helper's whole)."""
    out = dict(defaults)
    for key, value in given.items():
        both = (isinstance(value, dict) and isinstance(out.get(key), dict) and key != "encoder"
                and "class_path" not in value)  # a user's class replaces the helper's settings whole
        out[key] = {**out[key], **value} if both else value
    return out


def make_pdae(ckpt, **kwargs):
    from diffrep.lightning_modules import PDAE

    torch.manual_seed(0)
    defaults = {"latent_dim": 8, "encoder": PDAE_ENCODER, "optimisation": {"lr": 1e-3}, "ema": {"decay": 0.9}}
    return PDAE(str(ckpt), **with_defaults(defaults, kwargs))


def trained_once(tmp_path_factory: pytest.TempPathFactory, name: str, train: Callable[[Path], None]) -> Path:
    """The checkpoint a session fixture trains, trained once per test run: under ``pytest -n 2`` the
    first worker to ask trains it (``train(path)``) while the other waits on the lock, then reads it."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / f"tiny_{name}"
    with FileLock(f"{root}.lock"):
        path = root / f"{name}.ckpt"
        if not path.is_file():
            root.mkdir(exist_ok=True)
            train(path)
    return path


@pytest.fixture(scope="session")
def tiny_pdae_checkpoint(tiny_dpm_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PDAE (8-d code) trained for 100 steps of batch 32 on the tiny DPM, saved as a checkpoint."""
    def train(path: Path) -> None:
        model = make_pdae(tiny_dpm_checkpoint, optimisation={"lr": 2e-3})
        trainer = quiet_trainer(path.parent, max_steps=100)
        trainer.fit(model, datamodule=digits(batch_size=32))
        trainer.save_checkpoint(path)

    return trained_once(tmp_path_factory, "pdae", train)


DRL_ENCODER = {"kind": "conv", "channels": (16, 32), "num_groups": 8, "num_heads": 1}


def make_drl(cls=None, **kwargs):
    from diffrep.lightning_modules import DRL, DiffAE

    cls = cls or DRL
    torch.manual_seed(0)
    defaults = dict(network=tiny_unet_config().as_dict(), encoder=DRL_ENCODER, code={"latent_dim": 8},
                    optimisation={"lr": 2e-3}, ema={"decay": None})
    if cls is DiffAE:
        defaults.update(encoder={"kind": "halfunet", "base_channels": 16, "channel_mult": [1, 2],
                                 "num_res_blocks": 1, "num_groups": 8})
    return cls(**with_defaults(defaults, kwargs))


@pytest.fixture(scope="session")
def tiny_drl_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DRL (8-d static code) trained for 60 steps on 16x16 digits, saved as a checkpoint."""
    def train(path: Path) -> None:
        model = make_drl(ema={"decay": 0.9})
        trainer = quiet_trainer(path.parent, max_steps=60)
        trainer.fit(model, datamodule=digits())
        trainer.save_checkpoint(path)

    return trained_once(tmp_path_factory, "drl", train)


@pytest.fixture(scope="session")
def tiny_dpm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DPM trained for 150 steps of batch 32 on 16x16 digits (~20 s), saved as a diffrep checkpoint."""
    def train(path: Path) -> None:
        L.seed_everything(0)
        model = DPM(unet=tiny_unet_config(), schedule=ScheduleConfig(num_timesteps=1000),
                    optimisation={"lr": 4e-3}, ema={"decay": 0.98})
        trainer = quiet_trainer(path.parent, max_steps=150)
        trainer.fit(model, datamodule=digits(batch_size=32))
        trainer.save_checkpoint(path)

    return trained_once(tmp_path_factory, "dpm", train)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_wandb_run_left_open():
    """A W&B run a test leaves open would take the next test's WandbLogger (its files land in the
    first test's folder), so each test's run is finished after it."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def linear_probe_again(encoder, data, held_out: str, max_train: int, max_held_out: int) -> float:
    """The linear probe of ``encoder``'s codes (its first ``max_train`` training and ``max_held_out``
    ``held_out`` images), computed again: what a callback that logged a probe must have logged."""
    from diffrep.evaluation.features import encode_split
    from diffrep.evaluation.probes import linear_probe

    torch.manual_seed(0)
    train = encode_split(encoder, data.evaluation_split("train"), max_train)
    return linear_probe(*train, *encode_split(encoder, data.evaluation_split(held_out), max_held_out))["accuracy"]


def fit_with_every_evaluation_callback(model, tmp_path: Path, latent_plot: bool = True) -> L.Trainer:
    """One epoch of 96 digits (3 steps) with every evaluation callback on a tiny model: the probe's number
    is the linear probe of the model's codes as fit left them (3 steps teach a tiny model too little for a
    bound on it to tell a trained code from a random one), inversion reconstructs better than random x_T,
    and every image grid is written."""
    from diffrep.callbacks import (
        FewLabelProbe,
        InterpolationGrid,
        LatentPlot,
        LinearProbe,
        ManipulationGrid,
        ReconstructionGrid,
        ReconstructionMetrics,
        SampleGrid,
    )

    probe = LinearProbe(max_train=200, max_test=100)
    few = FewLabelProbe(labels_per_class=(1,), seeds=(0,), max_train=200, max_test=100)
    metrics = ReconstructionMetrics(num_images=8, num_steps=4)
    callbacks = [
        probe,
        few,
        SampleGrid(num_steps=4, num_images=4),
        ReconstructionGrid(num_steps=4, num_images=4),
        InterpolationGrid(num_steps=4, num_rows=1, num_points=3),
        metrics,
        ManipulationGrid(num_steps=4, num_images=2, num_codes=200),
    ]
    if latent_plot:
        callbacks.append(LatentPlot(max_test=100))
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=callbacks)
    data = digits(batch_size=32, subset=96)
    trainer.fit(model, datamodule=data)
    assert probe.last["probe/linear_accuracy"] == pytest.approx(linear_probe_again(model, data, "val", 200, 100))
    assert set(few.last) == {"probe/few_label_1_mean", "probe/few_label_1_std"}
    assert metrics.last["recon/inverted_mse"] < metrics.last["recon/random_mse"]
    images = {p.name.split("_step")[0] for p in (tmp_path / "images").glob("*.png")}
    assert images == {"samples", "reconstructions", "interpolations", "manipulations"} | (
        {"latent_plot"} if latent_plot else set()
    )
    return trainer
