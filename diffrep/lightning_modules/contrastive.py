"""Contrastive baselines: SimCLR (Chen et al. 2020) and the DRL paper's restricted "SimCLR-Gauss".

Two random views of each image, encoder (the same conv encoder as the autoencoder baselines,
so codes compare at equal width) then a projection MLP, NT-Xent loss with temperature tau over
the 2B views of a batch; the code is the encoder's output, before the projection head.

Views (``views``):
- ``standard``: SimCLR's augmentations for small grey images — random resized crop (scale
  0.25-1, aspect 3/4-4/3, bilinear), horizontal flip, and with probability 0.8 brightness and
  contrast jitter of strength 0.4 (no colour or hue jitter: one channel);
- ``gauss``: the image plus Gaussian noise of a std drawn uniformly from ``noise_std`` per view
  and nothing else: the DRL paper's SimCLR-Gauss, which sees the same corruption as a denoiser.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffrep.errors import ConfigError
from diffrep.lightning_modules.baselines import TrainedBaseline
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.nets.encoders import build_encoder

VIEWS = ("standard", "gauss")


def random_resized_crop(x: Tensor, scale: tuple[float, float] = (0.25, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Tensor:
    """A random crop of each image (area fraction in ``scale``, aspect in ``ratio``) resized back."""
    b = x.shape[0]
    area = torch.empty(b, device=x.device).uniform_(*scale)
    log_ratio = torch.empty(b, device=x.device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = log_ratio.exp()
    w = (area * aspect).sqrt().clamp(max=1.0)
    h = (area / aspect).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, device=x.device) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, device=x.device) * 2 - 1) * (1 - h)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def standard_view(x: Tensor) -> Tensor:
    """Crop, flip, brightness/contrast jitter (module docstring); images in [-1, 1]."""
    b = x.shape[0]
    x = random_resized_crop(x)
    flip = torch.rand(b, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    jitter = (torch.rand(b, 1, 1, 1, device=x.device) < 0.8).to(x.dtype)
    brightness = 1 + jitter * torch.empty(b, 1, 1, 1, device=x.device).uniform_(-0.4, 0.4)
    contrast = 1 + jitter * torch.empty(b, 1, 1, 1, device=x.device).uniform_(-0.4, 0.4)
    x01 = (x + 1) / 2 * brightness
    mean = x01.mean(dim=(1, 2, 3), keepdim=True)
    x01 = (x01 - mean) * contrast + mean
    return x01.clamp(0, 1) * 2 - 1


def gauss_view(x: Tensor, noise_std: tuple[float, float]) -> Tensor:
    std = torch.empty(x.shape[0], 1, 1, 1, device=x.device).uniform_(*noise_std)
    return x + std * torch.randn_like(x)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """SimCLR's NT-Xent: each view's positive is the other view of its image, its negatives the
    other 2B - 2 views; cosine similarity / temperature, mean cross-entropy over the 2B views."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


class SimCLR(TrainedBaseline):
    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 32,
        encoder: str | dict[str, Any] = "conv",
        projection_dim: int = 128,
        projection_hidden: int = 512,
        temperature: float = 0.5,
        views: str = "standard",
        noise_std: tuple[float, float] = (0.1, 1.0),
        optimisation: OptimiserSettings = OptimiserSettings(lr=1e-3),
    ) -> None:
        """``encoder``: a name, ``{kind: NAME, <its settings>}`` or your own ``{class_path, init_args}``."""
        super().__init__()
        if views not in VIEWS:
            raise ConfigError(f"unknown views {views!r}; choose one of {list(VIEWS)}")
        self.save_hyperparameters()
        self.setup_optimisation(optimisation)
        self.image_shape = tuple(image_shape)
        c, size = self.image_shape[0], self.image_shape[-1]
        self.encoder = build_encoder(encoder, c, size, latent_dim)
        self.projection = nn.Sequential(nn.Linear(latent_dim, projection_hidden), nn.ReLU(),
                                        nn.Linear(projection_hidden, projection_dim))
        self.latent_dim, self.temperature, self.views, self.noise_std = latent_dim, temperature, views, tuple(noise_std)

    @property
    def anchor(self) -> Tensor:
        return self.projection[0].weight

    def view(self, x: Tensor) -> Tensor:
        return standard_view(x) if self.views == "standard" else gauss_view(x, self.noise_std)

    def encode(self, x0: Tensor) -> Tensor:
        with self._eval():
            return self.encoder(x0)

    def loss(self, x0: Tensor) -> Tensor:
        z1, z2 = (self.projection(self.encoder(self.view(x0))) for _ in range(2))
        return nt_xent(z1, z2, self.temperature)
