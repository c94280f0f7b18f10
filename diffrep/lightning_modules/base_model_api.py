"""The evaluation API of a module built on a frozen, trained base model (the latent DPM on PDAE,
Diff-AE, DRL or VDRL): encoding, reconstruction, interpolation and editing are the base model's own,
so such a checkpoint answers every evaluation callback. Sampling is the module's."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class BaseModelAPI:
    """Delegates the evaluation API to ``self.base``."""

    base: Any

    def encode(self, x0: Tensor) -> Tensor:
        return self.base.encode(x0)

    def reconstruct(self, x0: Tensor, num_steps: int = 100, inversion_steps: int | None = None) -> Tensor:
        return self.base.reconstruct(x0, num_steps, inversion_steps)

    def check_editable(self) -> None:
        self.base.check_editable()

    def manipulate(self, x0: Tensor, direction: Any, scales: list[float], num_steps: int = 100,
                   inversion_steps: int | None = None) -> Tensor:
        return self.base.manipulate(x0, direction, scales, num_steps, inversion_steps)

    def reconstruct_from_noise(
        self, x0: Tensor, num_steps: int = 100, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.base.reconstruct_from_noise(x0, num_steps, generator)

    def interpolate(self, x_a: Tensor, x_b: Tensor, num_points: int = 8, num_steps: int = 100) -> Tensor:
        return self.base.interpolate(x_a, x_b, num_points, num_steps)
