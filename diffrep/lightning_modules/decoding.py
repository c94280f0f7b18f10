"""The public evaluation API every diffusion method shares: encode, invert, decode, reconstruct,
interpolate and sample, written once on three hooks a method fills in.

A method that decodes from a code writes ``code_of`` (the code of images), ``code_eps_fn`` (the
noise prediction DDIM runs with, given a code) and ``code_path`` (codes between two codes); DDIM
inversion, decoding, reconstruction and interpolation below then work unchanged for it (PDAE: z;
DRL: t -> z; DPM: no code). Callbacks use only these methods, never a method's internals.

The DDIM step grid is the model's ``timestep_grid`` (``linspace``, diffrep's default, or the
``official`` PDAE/Diff-AE grid; see ``NoiseSchedule.ddim_levels``); an evaluation callback may
set it for its own run with ``timestep_grid_scope``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from diffrep.diffusion.sampling import ClipX0, EpsFn, ddim_invert, ddim_sample
from diffrep.diffusion.schedule import TIMESTEP_GRIDS, NoiseSchedule
from diffrep.errors import ConfigError
from diffrep.lightning_modules.api import UnsupportedOperation
from diffrep.nets.data_space import ChannelStandardisation


class CodeDecodingMixin:
    """Evaluation API on top of ``schedule``, the three code hooks and ``inference()`` (eval
    mode, EMA weights, no autograd), which ``DiffusionBackboneMixin`` provides."""

    schedule: NoiseSchedule
    image_shape: tuple[int, int, int]
    timestep_grid: str = "linspace"

    def set_timestep_grid(self, grid: str) -> None:
        if grid not in TIMESTEP_GRIDS:
            raise ConfigError(f"unknown timestep_grid {grid!r}; choose one of {list(TIMESTEP_GRIDS)}")
        self.timestep_grid = grid

    @contextmanager
    def timestep_grid_scope(self, grid: str | None) -> Iterator[None]:
        """Decode and invert on ``grid`` inside the block (None: the model's own)."""
        previous = self.timestep_grid
        if grid is not None:
            self.set_timestep_grid(grid)
        try:
            yield
        finally:
            self.set_timestep_grid(previous)

    def model_device(self) -> torch.device:
        return next(self.parameters()).device  # type: ignore[attr-defined]

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """x_T ~ N(0, sigma_max^2 I) for the schedule's largest time."""
        t_max = torch.full((1,), self.schedule.t_max, device=self.model_device())
        scale = float(self.schedule.sigma(t_max if not self.schedule.discrete else t_max.long()))
        return scale * torch.randn(n, *self.image_shape, generator=generator, device=self.model_device())

    def encode(self, x0: Tensor) -> Tensor:
        """The representation of images x0 in [-1, 1]: (B, C, H, W) -> (B, D)."""
        raise UnsupportedOperation(f"{type(self).__name__} has no encoder")

    def sample(self, n: int, num_steps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        """n new images in [-1, 1]."""
        raise UnsupportedOperation(f"{type(self).__name__} cannot sample")

    def code_of(self, x0: Tensor) -> Any:
        """The code a decoder is conditioned on, for images x0."""
        raise UnsupportedOperation(f"{type(self).__name__} cannot reconstruct")

    def code_eps_fn(self, code: Any) -> EpsFn:
        """The noise prediction DDIM runs with, given a code."""
        raise UnsupportedOperation(f"{type(self).__name__} cannot reconstruct")

    def code_path(self, ends: Any, weight: Tensor) -> Any:
        """Codes along the path between the two codes in ``ends`` at ``weight`` in [0, 1]."""
        raise UnsupportedOperation(f"{type(self).__name__} cannot interpolate")

    def code_from_vector(self, z: Tensor) -> Any:
        """The decoder's code for code vectors z as ``encode`` returns them (PDAE: z itself; DRL:
        the constant t -> z), so edited vectors can be decoded."""
        return z

    def check_editable(self) -> None:
        """Raise ``UnsupportedOperation`` where a code is not one vector to move (no encoder, E(x0, t))."""

    def manipulate(self, x0: Tensor, direction: Any, scales: list[float], num_steps: int = 100,
                   inversion_steps: int | None = None) -> Tensor:
        """Edit images along a code direction (``diffrep.manipulation``): (len(scales), B, C, H, W).

        Each image keeps its own x_T, inverted under its own code with the method's conditional
        model (``inversion_steps``, default ``num_steps``; the official PDAE edits invert with 500
        steps and decode with 200); only its code moves, z' = ``direction.edit(z, s)``, in the
        normalised space the direction's classifier was fitted in (Diff-AE's and PDAE's edits)."""
        self.check_editable()
        with self.inference():
            z = self.encode(x0)
            x_T = self.invert(x0, self.code_from_vector(z), inversion_steps or num_steps)
            return torch.stack([self.decode(self.code_from_vector(direction.edit(z, s)), x_T, num_steps)
                                for s in scales])

    # ------------------------------------------------------------------ the data space
    # Images come and go in [-1, 1]; a method whose diffusion runs on other data (DRL's official
    # CIFAR-10 standardises each channel) sets ``standardisation``: images are mapped in and out here,
    # and DDIM clamps x0 to the standardised image of [0, 1]. (Read with getattr: a class-level default
    # would hide the submodule nn.Module keeps in its own registry.)
    def data_standardisation(self) -> ChannelStandardisation | None:
        return getattr(self, "standardisation", None)

    def to_data_space(self, images: Tensor) -> Tensor:
        std = self.data_standardisation()
        return images if std is None else std(images)

    def to_images(self, x: Tensor) -> Tensor:
        std = self.data_standardisation()
        return x if std is None else std.inverse(x)

    def x0_range(self) -> ClipX0:
        std = self.data_standardisation()
        return True if std is None else std.bounds()

    def invert(self, x0: Tensor, code: Any = None, num_steps: int = 100) -> Tensor:
        """x_T of images by deterministic DDIM inversion under the (code-conditioned) model."""
        with self.inference():
            return ddim_invert(self.code_eps_fn(code), self.schedule, self.to_data_space(x0), num_steps,
                               clip_x0=self.x0_range(), grid=self.timestep_grid)

    def decode(self, code: Any, x_T: Tensor, num_steps: int = 100, eps_fn: EpsFn | None = None) -> Tensor:
        """DDIM from x_T with the code's noise prediction (or ``eps_fn``, e.g. PDAE's shift-off one)."""
        with self.inference():
            return self.to_images(ddim_sample(eps_fn or self.code_eps_fn(code), self.schedule, x_T, num_steps,
                                              clip_x0=self.x0_range(), grid=self.timestep_grid))

    def reconstruct(self, x0: Tensor, num_steps: int = 100, inversion_steps: int | None = None) -> Tensor:
        """Decode the code of x0 from its inverted x_T (the paper inverts with more steps than it decodes)."""
        with self.inference():
            code = self.code_of(x0)
            return self.decode(code, self.invert(x0, code, inversion_steps or num_steps), num_steps)

    def reconstruct_from_noise(
        self, x0: Tensor, num_steps: int = 100, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decode the code of x0 from random x_T: what the code alone carries of the image."""
        with self.inference():
            return self.decode(self.code_of(x0), self.noise(x0.shape[0], generator), num_steps)

    def interpolate(self, x_a: Tensor, x_b: Tensor, num_points: int = 8, num_steps: int = 100) -> Tensor:
        """(num_points, C, H, W): codes along ``code_path``, inverted x_T slerped (DDIM sec. 5.3)."""
        with self.inference():
            x0 = torch.stack([x_a, x_b])
            ends = self.code_of(x0)
            x_T = self.invert(x0, ends, num_steps)
            w = torch.linspace(0, 1, num_points, device=x0.device)
            x_path = slerp(x_T[:1].expand(num_points, *x_T.shape[1:]), x_T[1:].expand(num_points, *x_T.shape[1:]), w)
            return self.decode(self.code_path(ends, w), x_path, num_steps)


def slerp(a: Tensor, b: Tensor, weight: Tensor) -> Tensor:
    """Spherical interpolation of Gaussian noise (DDIM, Song et al. 2021, sec. 5.3)."""
    a_flat, b_flat = a.flatten(1), b.flatten(1)
    cos = (a_flat * b_flat).sum(1) / (a_flat.norm(dim=1) * b_flat.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1, 1))
    w = weight.reshape(-1, *([1] * (a.ndim - 1)))
    th = theta.reshape(-1, *([1] * (a.ndim - 1)))
    return (torch.sin((1 - w) * th) * a + torch.sin(w * th) * b) / torch.sin(th)
