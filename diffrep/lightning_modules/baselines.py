"""Baselines evaluated with the same protocol as the diffusion methods, so numbers mean something.

- ``PixelBaseline``: the code is the image itself (no training; ``diffrep test`` only).
- ``PCABaseline``: the top principal components of the training images (fitted in ``setup``
  from ``fit_items`` images; saved in the checkpoint).
- ``Autoencoder``: the PDAE conv encoder and its mirror-image decoder, trained with pixel MSE;
  ``variational=True`` makes it a VAE (``VAE``): the encoder gives (mean, logvar), the loss adds
  ``kl_weight`` * KL / pixels, and ``sample`` decodes z ~ N(0, I).

They answer the same API as the diffusion methods (``encode``, ``reconstruct``, ``interpolate``,
``sample`` where it exists; ``num_steps`` arguments are accepted and ignored).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.lightning_modules.api import (
    NonFiniteLossError,
    UnsupportedOperation,
    check_data_shape,
    check_state_shapes,
    codes_and_labels,
    evaluating,
)
from diffrep.lightning_modules.optimisation import OptimisationMixin, OptimiserSettings
from diffrep.lightning_modules.settings import as_saved, grouped_settings
from diffrep.nets.codes import gaussian_kl, reparameterise
from diffrep.nets.decoders import ConvDecoder
from diffrep.nets.encoders import build_encoder


class _Baseline(L.LightningModule):
    """Evaluation API on top of ``encode``/``decode_codes``."""

    image_shape: tuple[int, int, int]

    def model_device(self) -> torch.device:
        return self.anchor.device

    def setup(self, stage: str) -> None:
        check_data_shape(self, getattr(self.trainer, "datamodule", None))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Name the class, as every diffusion method does, so a later stage (LaplaceNet) can rebuild it."""
        checkpoint["diffrep"] = {"method": type(self).__name__}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_state_shapes(self, checkpoint)

    def decode_codes(self, z: Tensor) -> Tensor:
        raise UnsupportedOperation(f"{type(self).__name__} has no decoder")

    def sample(self, n: int, num_steps: int = 0, generator: torch.Generator | None = None) -> Tensor:
        raise UnsupportedOperation(f"{type(self).__name__} cannot sample")

    def reconstruct(self, x0: Tensor, num_steps: int = 0, inversion_steps: int | None = None) -> Tensor:
        with self._eval():
            return self.decode_codes(self.encode(x0)).clamp(-1, 1)

    def interpolate(self, x_a: Tensor, x_b: Tensor, num_points: int = 8, num_steps: int = 0) -> Tensor:
        with self._eval():
            z = self.encode(torch.stack([x_a, x_b]))
            w = torch.linspace(0, 1, num_points, device=z.device)[:, None]
            return self.decode_codes((1 - w) * z[:1] + w * z[1:]).clamp(-1, 1)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        return codes_and_labels(self, batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x0 = batch[0]
        try:
            # on pixels in [0, 1], as the reconstruction metrics report it
            self.log("test/recon_mse", F.mse_loss(self.reconstruct(x0), x0) / 4)
        except UnsupportedOperation:
            pass

    def _eval(self) -> AbstractContextManager[None]:
        """Eval mode and no autograd; the previous mode is restored afterwards."""
        return evaluating(self)


class PixelBaseline(_Baseline):
    """z = the image's pixels, flattened: the reference any representation should beat."""

    def __init__(self, image_shape: tuple[int, int, int] = (1, 32, 32)) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.image_shape = tuple(image_shape)
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # carries the device

    def encode(self, x0: Tensor) -> Tensor:
        return x0.flatten(1)


class PCABaseline(_Baseline):
    """z = the first ``num_components`` principal-component scores of the image."""

    def __init__(self, image_shape: tuple[int, int, int] = (1, 32, 32), num_components: int = 32,
                 fit_items: int = 10000) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.image_shape, self.fit_items = tuple(image_shape), fit_items
        dim = int(torch.tensor(image_shape).prod())
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("components", torch.zeros(dim, num_components))
        self.register_buffer("scale", torch.ones(num_components))  # score std, for sampling
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def fitted(self) -> bool:
        return bool(self.components.abs().sum() > 0)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if not self.fitted() and datamodule is not None:
            datamodule.setup()
            train = datamodule.evaluation_split("train")
            n = min(self.fit_items, len(train))
            self.fit(torch.stack([train[i][0] for i in range(n)]))

    def fit(self, images: Tensor) -> None:
        """Principal directions of ``images`` by SVD of the centred pixel matrix."""
        x = images.flatten(1).float()
        k = self.components.shape[1]
        if k > min(x.shape):
            raise ConfigError(f"num_components {k} exceeds min(images, pixels) = {min(x.shape)}")
        mean = x.mean(0)
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        self.mean.copy_(mean)
        self.components.copy_(vh[:k].T)
        self.scale.copy_(s[:k] / max(1, len(x) - 1) ** 0.5)

    def encode(self, x0: Tensor) -> Tensor:
        if not self.fitted():
            raise UnsupportedOperation(
                "PCABaseline is not fitted; run it with a datamodule (diffrep test --config ...)"
            )
        return (x0.flatten(1) - self.mean) @ self.components

    def decode_codes(self, z: Tensor) -> Tensor:
        return (z @ self.components.T + self.mean).view(len(z), *self.image_shape)

    def sample(self, n: int, num_steps: int = 0, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, len(self.scale), generator=generator, device=self.mean.device) * self.scale
        return self.decode_codes(z).clamp(-1, 1)

    def configure_optimizers(self) -> None:
        return None


class TrainedBaseline(OptimisationMixin, _Baseline, ABC):
    """A baseline trained by minimising ``loss(x0)`` (the autoencoders, SimCLR): one training step,
    validation, and the methods' optimiser settings (``optimisation``: Adam by default, or the user's
    optimiser and schedule by ``class_path``) for all of them."""

    optimisation: OptimiserSettings

    def setup_optimisation(self, optimisation: OptimiserSettings | dict) -> None:
        """``optimisation`` as its settings object (a dict's missing fields from the class's signature), saved
        as plain data (the checkpoint loads weights-only)."""
        self.optimisation = grouped_settings(type(self), optimisation=optimisation)["optimisation"]
        self.hparams["optimisation"] = as_saved(self.optimisation)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @abstractmethod
    def loss(self, x0: Tensor) -> Tensor:
        """The training objective of a batch of images."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.loss(batch[0])
        if not torch.isfinite(loss) and getattr(self, "_nonfinite_guard", None) is None:
            raise NonFiniteLossError(f"non-finite loss at step {self.global_step}; lower the learning rate")
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch[0]), sync_dist=True)


class Autoencoder(TrainedBaseline):
    """A conv autoencoder (or VAE) of the PDAE encoder's size, trained by pixel MSE."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 32,
        encoder: str | dict[str, Any] = "conv",
        decoder_channels: tuple[int, ...] = (128, 64, 32),
        num_groups: int = 8,
        variational: bool = False,
        kl_weight: float = 0.01,
        optimisation: OptimiserSettings = OptimiserSettings(lr=1e-3),
    ) -> None:
        """``encoder``: a name, ``{kind: NAME, <its settings>}`` or your own ``{class_path, init_args}``."""
        super().__init__()
        self.save_hyperparameters()
        self.setup_optimisation(optimisation)
        self.image_shape = tuple(image_shape)
        c, size = self.image_shape[0], self.image_shape[-1]
        self.variational, self.kl_weight, self.latent_dim = variational, kl_weight, latent_dim
        self.encoder = build_encoder(encoder, c, size, latent_dim * (2 if variational else 1))
        self.decoder = ConvDecoder(c, size, latent_dim, tuple(decoder_channels), num_groups)

    @property
    def anchor(self) -> Tensor:
        return self.decoder.start.weight

    def encode(self, x0: Tensor) -> Tensor:
        """The code (the posterior mean for a VAE)."""
        with self._eval():
            return self.encoder(x0)[:, : self.latent_dim]

    def decode_codes(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def loss(self, x0: Tensor) -> Tensor:
        h = self.encoder(x0)
        if not self.variational:
            return F.mse_loss(self.decoder(h), x0)
        mean, logvar = h.chunk(2, dim=1)
        recon = F.mse_loss(self.decoder(reparameterise(mean, logvar)), x0)
        return recon + self.kl_weight * gaussian_kl(mean, logvar).mean() / x0[0].numel()

    def sample(self, n: int, num_steps: int = 0, generator: torch.Generator | None = None) -> Tensor:
        if not self.variational:
            raise UnsupportedOperation("a plain autoencoder has no prior to sample from; use the VAE")
        with self._eval():
            z = torch.randn(n, self.latent_dim, generator=generator, device=self.anchor.device)
            return self.decode_codes(z).clamp(-1, 1)


class VAE(Autoencoder):
    """``Autoencoder(variational=True)``.

    The signature is spelled out rather than forwarded with ``**kwargs``: jsonargparse fills a
    forwarded signature with the parent's defaults, which would pass ``variational=False``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 32,
        encoder: str | dict[str, Any] = "conv",
        decoder_channels: tuple[int, ...] = (128, 64, 32),
        num_groups: int = 8,
        kl_weight: float = 0.01,
        optimisation: OptimiserSettings = OptimiserSettings(lr=1e-3),
    ) -> None:
        super().__init__(
            image_shape=image_shape,
            latent_dim=latent_dim,
            encoder=encoder,
            decoder_channels=decoder_channels,
            num_groups=num_groups,
            variational=True,
            kl_weight=kl_weight,
            optimisation=optimisation,
        )
