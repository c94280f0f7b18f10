"""Stage 3 of PDAE: a DPM on its codes, so a trained autoencoder can generate new images.

PDAE (sec. 4.4) and Diff-AE fit a small DPM to the normalised codes z of the frozen encoder:
an MLP with skips, constant beta 0.008 over T = 1000, eps prediction with an L1 loss. A new
image is a latent DDIM sample z, de-normalised, then an image DDIM decode from random x_T with
PDAE's shift on for the first steps and off for the last ``shift_off_fraction`` of them.

The PDAE is loaded from its own checkpoint (self-contained: it holds the frozen DPM), its EMA
weights are copied in once, and it is frozen; only the MLP trains. ``encode``, ``reconstruct``
and ``interpolate`` are the PDAE's, so a LatentDPM checkpoint answers the whole evaluation API.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from diffrep.diffusion.sampling import ddim_sample
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.evaluation.features import encode_split
from diffrep.lightning_modules.backbone import DiffusionBackboneMixin
from diffrep.lightning_modules.pdae import PDAE, load_pdae
from diffrep.nets.latent_mlp import LatentMLP


class LatentDPM(DiffusionBackboneMixin, L.LightningModule):
    def __init__(
        self,
        pdae_checkpoint: str = "runs/pdae/checkpoints/last.ckpt",
        hidden: int = 512,
        num_layers: int = 10,
        beta: float = 0.008,
        num_timesteps: int = 1000,
        lr: float = 1e-4,
        ema_decay: float | None = 0.999,
        norm_batches: int = 50,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.pdae: PDAE = load_pdae(pdae_checkpoint)
        latent_dim = self.pdae.encoder.latent_dim
        self.setup_backbone(
            ScheduleConfig(kind="discrete", num_timesteps=num_timesteps, beta_schedule="constant", beta_end=beta),
            "uniform", None, "uniform", lr, ema_decay=ema_decay, image_shape=self.pdae.image_shape,
        )
        self.freeze(self.pdae)
        self.net = LatentMLP(latent_dim, hidden, num_layers)
        # Code statistics of the training set: estimated at the start of fit, saved with the model.
        self.register_buffer("z_mean", torch.zeros(latent_dim))
        self.register_buffer("z_std", torch.ones(latent_dim))
        self.norm_batches = norm_batches
        self.setup_ema()

    # ------------------------------------------------------------------ codes
    def normalise(self, z: Tensor) -> Tensor:
        return (z - self.z_mean) / self.z_std

    def denormalise(self, z: Tensor) -> Tensor:
        return z * self.z_std + self.z_mean

    def on_fit_start(self) -> None:
        """Mean and std of the codes of the first ``norm_batches`` training batches (skipped on
        resume); under DDP the ranks share the encoding and all get the same statistics."""
        if self.trainer.ckpt_path or bool(self.z_std.ne(1).any()):
            return
        datamodule = self.trainer.datamodule
        z, _ = encode_split(self.pdae, datamodule.splits["train"], self.norm_batches * datamodule.batch_size)
        self.z_mean.copy_(z.mean(0))
        self.z_std.copy_(z.std(0).clamp_min(1e-6))

    def eps(self, z_t: Tensor, t: Tensor) -> Tensor:
        return self.net(z_t, t)

    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        """L1 eps-prediction loss on normalised codes of the (frozen) PDAE encoder."""
        with torch.no_grad():
            z = self.normalise(self.pdae.encoder(x0))
        return self.denoising_loss(z, self.eps, t, norm="l1")[0]

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {**super().checkpoint_metadata(), "latent_dim": self.net.latent_dim}

    # --------------------------------------------------------- evaluation API
    def sample_codes(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        """New codes z (de-normalised) by latent DDIM from N(0, I)."""
        noise = torch.randn(n, self.net.latent_dim, generator=generator, device=self.model_device())
        with self.inference():
            return self.denormalise(ddim_sample(self.eps, self.schedule, noise, num_steps, clip_x0=False))

    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        z = self.sample_codes(n, num_steps, generator)
        return self.pdae.generate(z, self.pdae.noise(n, generator), num_steps)

    def encode(self, x0: Tensor) -> Tensor:
        return self.pdae.encode(x0)

    def reconstruct(self, x0: Tensor, num_steps: int = 100, inversion_steps: int | None = None) -> Tensor:
        return self.pdae.reconstruct(x0, num_steps, inversion_steps)

    def reconstruct_from_noise(
        self, x0: Tensor, num_steps: int = 100, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.pdae.reconstruct_from_noise(x0, num_steps, generator)

    def interpolate(self, x_a: Tensor, x_b: Tensor, num_points: int = 8, num_steps: int = 100) -> Tensor:
        return self.pdae.interpolate(x_a, x_b, num_points, num_steps)
