"""What every diffrep method shares in training, as composed pieces: the denoising objective and the
steps that run it (here), the EMA (``ema_weights.py``), the optimiser and clipping (``optimisation.py``),
frozen networks and fast paths (``network_state.py``), checkpoint metadata and the random streams of an
exact resume (``run_state.py``); the evaluation API (encode, invert, decode, reconstruct, interpolate,
sample) is ``CodeDecodingMixin`` (``decoding.py``), which callbacks use alone.

A method subclasses ``DiffusionBackboneMixin`` together with ``LightningModule``, builds its
networks, calls ``setup_backbone`` and writes ``loss`` with ``denoising_loss``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from diffrep.diffusion.objective import DenoisingObjective
from diffrep.diffusion.schedule import NoiseSchedule, ScheduleConfig
from diffrep.lightning_modules.api import NonFiniteLossError, UnsupportedOperation, check_data_shape, codes_and_labels
from diffrep.lightning_modules.decoding import CodeDecodingMixin, slerp
from diffrep.lightning_modules.ema_weights import EMAWeightsMixin
from diffrep.lightning_modules.network_state import NetworkStateMixin
from diffrep.lightning_modules.optimisation import OptimisationMixin, OptimiserSettings
from diffrep.lightning_modules.run_state import RunStateMixin
from diffrep.lightning_modules.settings import EMASettings

__all__ = ["DiffusionBackboneMixin", "NonFiniteLossError", "UnsupportedOperation", "slerp"]


class DiffusionBackboneMixin(CodeDecodingMixin, EMAWeightsMixin, OptimisationMixin, NetworkStateMixin,
                             RunStateMixin, ABC):
    """Shared machinery; mix in before ``lightning.LightningModule``."""

    schedule: NoiseSchedule

    def setup_backbone(
        self,
        schedule: ScheduleConfig,
        objective: DenoisingObjective,
        optimisation: OptimiserSettings,
        ema: EMASettings,
        image_shape: tuple[int, int, int],
        timestep_grid: str = "linspace",
    ) -> None:
        """The pieces every method composes, each one settings object (``settings.py``): the whole loss
        (``objective``), the optimiser and its warm-up, the EMA, the schedule and the DDIM grid."""
        self.objective, self.optimisation, self.ema_settings = objective, optimisation, ema
        self.set_timestep_grid(timestep_grid)
        self.schedule_config = schedule
        self.schedule = schedule.build()
        self.ema = None
        self.image_shape = tuple(image_shape)

    @staticmethod
    def images(batch: Any) -> Tensor:
        """Datamodules yield (image, label); methods train on the image alone."""
        return batch[0] if isinstance(batch, (list, tuple)) else batch

    def setup(self, stage: str) -> None:
        check_data_shape(self, getattr(self.trainer, "datamodule", None))  # type: ignore[attr-defined]

    # -------------------------------------------------------------------- loss
    def sample_time(self, n: int, device: torch.device) -> Tensor:
        return self.objective.sample_time(self.schedule, n, device)

    def denoising_loss(self, x0: Tensor, predict_eps: Any, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The method's objective (``diffrep.diffusion.objective``) on ``predict_eps(x_t, t)``: (loss,
        per-sample error). Times are drawn here, through ``sample_time``, which a method may override."""
        if t is None:
            t = self.sample_time(x0.shape[0], x0.device)
        return self.objective(self.schedule, x0, predict_eps, t)

    @abstractmethod
    def loss(self, x0: Tensor, t: Tensor | None = None) -> Tensor:
        """The method's training objective on a batch of clean images (at times t, or sampled)."""

    # ------------------------------------------------------------------- steps
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.loss(self.images(batch))
        self.check_finite(loss)
        # The mean over ranks (one all-reduce of a scalar); on one device it is the loss itself.
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)  # type: ignore[attr-defined]
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """The same objective with seeded t and noise, so validation losses are comparable."""
        with self.fixed_noise(batch_idx):
            loss = self.loss(self.images(batch))
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)  # type: ignore[attr-defined]

    def test_step(self, batch: Any, batch_idx: int) -> None:
        with self.ema_scope(), self.fixed_noise(batch_idx):
            loss = self.loss(self.images(batch))
        self.log("test/loss", loss, sync_dist=True)  # type: ignore[attr-defined]

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        """``diffrep predict``: the code and label of each image (``CodeWriter`` saves them)."""
        return codes_and_labels(self, batch)

    def check_finite(self, loss: Tensor) -> None:
        """Stop on a NaN/inf loss, unless a ``NonFiniteGuard`` callback is installed (the CLI
        always installs one): it then sees the non-finite gradients and stops or skips."""
        if getattr(self, "_nonfinite_guard", None) is not None or torch.isfinite(loss):
            return  # the guard first: reading the loss back is a host sync, which the guard avoids
        step = self.global_step  # type: ignore[attr-defined]
        raise NonFiniteLossError(
            f"non-finite loss ({loss.item()}) at step {step}; the last checkpoint on disk is intact. "
            "Lower the learning rate, set trainer.gradient_clip_val, or use precision 32."
        )
