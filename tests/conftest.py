"""Shared fixtures: tiny networks, the digits data set, and one tiny trained DPM per session."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning as L
import pytest
import torch

from diffrep.datamodules import DigitsDataModule
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.lightning_modules import DPM
from diffrep.nets.unet import UNetConfig

REPO = Path(__file__).resolve().parents[1]


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


def digits(batch_size: int = 64, image_size: int = 16, **kwargs) -> DigitsDataModule:
    return DigitsDataModule(image_size=image_size, batch_size=batch_size, val_size=100, **kwargs)


TINY_AUTOENCODER = """
seed_everything: 0
model:
  class_path: diffrep.lightning_modules.Autoencoder
  init_args:
    image_shape: [1, 16, 16]
    latent_dim: 8
    encoder_kwargs: {{channels: [16, 32], num_groups: 8, num_heads: 1}}
    decoder_channels: [32, 16]
    lr: 3.0e-3
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


@pytest.fixture(scope="session")
def tiny_dpm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DPM trained for 300 steps on 16x16 digits (a few seconds), saved as a diffrep checkpoint."""
    root = tmp_path_factory.mktemp("tiny_dpm")
    L.seed_everything(0)
    model = DPM(unet=tiny_unet_config(), schedule=ScheduleConfig(num_timesteps=1000), lr=2e-3, ema_decay=0.99)
    trainer = quiet_trainer(root, max_steps=300)
    trainer.fit(model, datamodule=digits())
    path = root / "dpm.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
