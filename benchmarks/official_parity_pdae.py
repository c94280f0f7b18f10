"""PDAE's K-step half of benchmarks/official_parity.py (see its docstring): K optimiser steps of
diffrep's PDAE LightningModule in a Lightning Trainer against the official representation-learning
step of ckczzj/PDAE (trainer/train_representation_learning.py: Adam over the encoder and the
shift parts, no clipping, ``accumulate`` EMA after every step; diffusion/gaussian_diffusion.py
``representation_learning_train_one_batch``), on shared random weights, batches, t and noise.
The official encoder is CELEBA64Encoder (64 px), diffrep's ``conv`` encoder at its settings."""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import lightning as L
import torch
import yaml
from official_parity_diffae import differences
from torch.utils.data import DataLoader, TensorDataset

from diffrep.lightning_modules import PDAE

STEPS, LATENT, SIZE = 5, 64, 64
DPM = dict(input_channel=3, base_channel=32, channel_multiplier=[1, 2, 2, 2], num_residual_blocks_of_a_block=1,
           attention_resolutions=[4], num_heads=4, head_channel=-1, use_new_attention_order=False, dropout=0.0)


class PinnedDraws(PDAE):
    """diffrep's PDAE with the torch stream reseeded per step just before t is drawn (with its
    own uniform sampler, torch.randint as the official), so that the official step can be given
    the same t and noise; nothing else changes."""

    def sample_time(self, n: int, device: torch.device) -> torch.Tensor:
        torch.manual_seed(1000 + self.global_step)
        return super().sample_time(n, device)


def randomise_(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.05)


def official_step(diffusion, encoder, decoder, fused: bool, ema_decay: float):
    """The official representation-learning step on ``encoder`` and ``decoder`` (in place): its Adam
    over the encoder and the shift parts, the loss, and its accumulate() EMA of the trainable weights
    into copies made here. Returns (step(batch), ema_encoder, ema_decoder)."""
    ema_encoder, ema_decoder = copy.deepcopy(encoder), copy.deepcopy(decoder)
    params = [{"params": encoder.parameters()}] + [{"params": getattr(decoder, name).parameters()} for name in
                                                    ("label_emb", "shift_middle_block", "shift_output_blocks",
                                                     "shift_out")]
    optimizer = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=fused or None)

    def step(batch: torch.Tensor) -> None:
        encoder.train(), decoder.set_train_mode()
        optimizer.zero_grad()
        diffusion.representation_learning_train_one_batch(encoder, decoder, batch)["prediction_loss"].backward()
        optimizer.step()
        with torch.no_grad():  # the official accumulate(): trainable weights only
            for ema, model in ((ema_encoder, encoder), (ema_decoder, decoder)):
                source = dict(model.named_parameters())
                for name, p in ema.named_parameters():
                    if source[name].requires_grad:
                        p.mul_(ema_decay).add_(source[name], alpha=1 - ema_decay)

    return step, ema_encoder, ema_decoder


def official_training(diffusion, encoder, decoder, batches, fused: bool):
    """The official step K times (its Adam, its accumulate() EMA at decay 0.9 to show differences)."""
    encoder, decoder = copy.deepcopy(encoder), copy.deepcopy(decoder)
    step, ema_encoder, ema_decoder = official_step(diffusion, encoder, decoder, fused, ema_decay=0.9)
    for k in range(len(batches)):
        torch.manual_seed(1000 + k)
        step(batches[k])
    weights = {**{f"encoder.{k}": v for k, v in encoder.named_parameters()},
               **{f"decoder.{k}": v for k, v in decoder.named_parameters()}}
    emas = {**{f"encoder.{k}": v for k, v in ema_encoder.named_parameters()},
            **{f"decoder.{k}": v for k, v in ema_decoder.named_parameters()}}
    return weights, emas


def official_parts():
    """From the official code at ``path`` (on sys.path): a random 64 px DPM written as an official
    checkpoint.pt + config.yml in a temporary folder, the shift decoder on it and the CELEBA64 encoder
    (every weight random and non-zero), and the diffusion. Returns (folder, encoder, decoder, diffusion)."""
    from diffusion.gaussian_diffusion import GaussianDiffusion
    from model.representation_learning.encoder.celeba64 import CELEBA64Encoder
    from model.shift_unet import ShiftUNet
    from model.unet import UNet

    torch.manual_seed(0)
    dpm = UNet(**DPM)
    randomise_(dpm)
    folder = Path(tempfile.mkdtemp(prefix="pdae_parity_"))
    torch.save({"ema_denoise_fn": dpm.state_dict()}, folder / "checkpoint.pt")
    (folder / "config.yml").write_text(yaml.safe_dump({
        "train_dataset_config": {"image_size": SIZE, "image_channel": 3},
        "diffusion_config": {"timesteps": 1000, "betas_type": "linear"}, "denoise_fn_config": DPM}))
    decoder = ShiftUNet(latent_dim=LATENT, **DPM)
    randomise_(decoder)  # the shift parts too (the official zero-initialises shift_out)
    decoder.load_state_dict(dpm.state_dict(), strict=False)  # the official load_trained_ddpm
    encoder = CELEBA64Encoder(latent_dim=LATENT)
    randomise_(encoder)
    diffusion = GaussianDiffusion({"timesteps": 1000, "betas_type": "linear"}, device="cpu")
    return folder, encoder, decoder, diffusion


def ours_like(folder: Path, cls: type[PDAE] = PDAE, **kwargs) -> PDAE:
    """diffrep's PDAE on that DPM with the ``conv`` encoder at CELEBA64Encoder's settings."""
    return cls(str(folder / "checkpoint.pt"), latent_dim=LATENT, optimisation={"lr": 1e-4}, objective={"gamma": 0.1},
               encoder={"kind": "conv", "channels": (64, 128, 128, 128), "attention_resolution": 16, "num_heads": 4},
               **kwargs)


def pdae_training_rows(path: Path) -> list[tuple[str, torch.Tensor, float]]:
    sys.path.insert(0, str(path))
    folder, encoder, decoder, diffusion = official_parts()
    batches = torch.rand(STEPS, 4, 3, SIZE, SIZE) * 2 - 1
    fused_weights, fused_emas = official_training(diffusion, encoder, decoder, batches, fused=True)
    plain_weights, _ = official_training(diffusion, encoder, decoder, batches, fused=False)

    ours = ours_like(folder, PinnedDraws, ema={"decay": 0.9})
    ours_encoder = list(ours.encoder.state_dict())
    official_encoder = list(encoder.state_dict())
    mapping = {f"encoder.{a}": f"encoder.{b}" for a, b in zip(ours_encoder, official_encoder, strict=True)}
    mapping.update({f"decoder.{k}": f"decoder.{k}" for k, p in ours.decoder.named_parameters() if p.requires_grad})
    state = {**{f"encoder.{k}": v for k, v in encoder.state_dict().items()},
             **{f"decoder.{k}": v for k, v in decoder.state_dict().items()}}
    ours.load_state_dict({k: state[v] for k, v in mapping.items()}, strict=False)
    for name, p in ours.named_parameters():
        if p.requires_grad:
            ours.ema.shadow(name).copy_(p.detach())
    data = DataLoader(TensorDataset(batches.flatten(0, 1), torch.zeros(STEPS * 4)), batch_size=4, shuffle=False)
    trainer = L.Trainer(accelerator="cpu", max_steps=STEPS, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0)
    trainer.fit(ours, train_dataloaders=data)
    sys.path.remove(str(path))

    trained = {k: p for k, p in ours.named_parameters() if p.requires_grad}
    mapping = {k: v for k, v in mapping.items() if k in trained}
    ours_ema = {k: ours.ema.shadow(k) for k in trained}
    identity = {v: v for v in mapping.values()}
    reference = differences(fused_weights, plain_weights, identity)
    gap = float(reference.max())
    steady = {k: v for (k, v), d in zip(mapping.items(), reference, strict=True) if d <= 1e-7}
    head = f"PDAE after {STEPS} training steps"
    return [
        (f"{head}, reference: official fused against foreach Adam", reference, float("inf")),
        (f"{head}, fused Adam: all {len(mapping)} trained weights", differences(trained, fused_weights, mapping),
         max(2 * gap, 1e-6)),
        (f"{head}, fused Adam: all EMA weights", differences(ours_ema, fused_emas, mapping), max(2 * gap, 1e-6)),
        (f"{head}, fused Adam: the {len(steady)} weights steady in the reference",
         differences(trained, fused_weights, steady), 1e-6),
        (f"{head}, the official foreach Adam: all trained weights", differences(trained, plain_weights, mapping),
         max(2 * gap, 1e-6)),
    ]
