"""What every diffrep method shares in training: schedule, reweighted denoising loss, time
sampling, EMA, optimiser, frozen sub-networks, checkpoint metadata and exact resume.

A method subclasses ``DiffusionBackboneMixin`` together with ``LightningModule``, builds its
networks, calls ``setup_backbone`` and writes ``loss`` with the helpers here. The evaluation API
(encode, invert, decode, reconstruct, interpolate, sample) is ``CodeDecodingMixin``
(``decoding.py``), which this mixin includes; callbacks use only that API.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from diffrep import rng
from diffrep.diffusion.objective import DenoisingObjective
from diffrep.diffusion.schedule import NoiseSchedule, ScheduleConfig
from diffrep.ema import EMA
from diffrep.internals import quiet_the_eval_mode_warning_of
from diffrep.lightning_modules.api import (
    NonFiniteLossError,
    UnsupportedOperation,
    check_data_shape,
    check_state_shapes,
    codes_and_labels,
    uses_gradient_scaler,
)
from diffrep.lightning_modules.decoding import CodeDecodingMixin, slerp
from diffrep.lightning_modules.optimisation import OptimiserSettings, clip_gradients
from diffrep.lightning_modules.settings import EMASettings, FastPaths

__all__ = ["DiffusionBackboneMixin", "NonFiniteLossError", "UnsupportedOperation", "slerp"]


class DiffusionBackboneMixin(CodeDecodingMixin, ABC):
    """Shared machinery; mix in before ``lightning.LightningModule``."""

    schedule: NoiseSchedule
    ema: EMA | None

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
        self._frozen: list[nn.Module] = []
        self._ema_stack: ExitStack | None = None

    # ----------------------------------------------------------------- networks
    def freeze(self, module: nn.Module, what: str | None = None) -> None:
        """Frozen means frozen: no grads, eval mode even after Lightning calls ``.train()``.
        ``what`` names the module in the one log line that says so (default: its class)."""
        module.requires_grad_(False)
        module.eval()
        self._frozen.append(module)
        self._frozen_names = [*getattr(self, "_frozen_names", []), what or type(module).__name__]

    def train(self, mode: bool = True):  # type: ignore[override]
        super().train(mode)  # type: ignore[misc]
        for module in getattr(self, "_frozen", []):
            module.eval()
        return self

    def setup_fast_paths(self, net: nn.Module, fast: FastPaths) -> None:
        """GPU speed options: NHWC memory layout and in-place ``torch.compile`` (keys unchanged).

        ``compile`` is False, True (the default mode) or a torch.compile mode name; on a GPU at
        small batches "reduce-overhead" (CUDA graphs) removes the kernel-launch cost that
        dominates a 32x32 U-Net step.
        """
        self.channels_last = fast.channels_last
        if fast.channels_last:
            net.to(memory_format=torch.channels_last)
        if fast.compile:
            net.compile(mode=None if fast.compile is True else fast.compile)

    def to_memory_format(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @staticmethod
    def images(batch: Any) -> Tensor:
        """Datamodules yield (image, label); methods train on the image alone."""
        return batch[0] if isinstance(batch, (list, tuple)) else batch

    @contextmanager
    def fixed_noise(self, seed: int) -> Iterator[None]:
        """Seeded t and noise for validation, without touching the training RNG stream."""
        with rng.forked(self.model_device()):
            torch.manual_seed(seed)
            yield

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]  # type: ignore[attr-defined]

    def setup_ema(self) -> None:
        """Average every trainable parameter of this module (frozen ones are excluded)."""
        if getattr(self, "ema", None) is not None:
            self.ema.unwatch()
        if self.ema_settings.decay is not None:
            self.ema = EMA(self, self.ema_settings.decay, ramp=self.ema_settings.ramp)  # type: ignore[arg-type]

    @contextmanager
    def ema_scope(self, enabled: bool = True) -> Iterator[None]:
        """Evaluate with the EMA weights (the ones a paper reports) unless disabled."""
        if self.ema is None or not enabled or self._ema_stack is not None:
            yield
            return
        with self.ema.average_parameters():
            yield

    @contextmanager
    def inference(self) -> Iterator[None]:
        """Eval mode, EMA weights, no autograd; the previous mode is restored afterwards."""
        was_training = self.training  # type: ignore[attr-defined]
        self.train(False)
        try:
            with self.ema_scope(), torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def setup(self, stage: str) -> None:
        check_data_shape(self, getattr(self.trainer, "datamodule", None))  # type: ignore[attr-defined]

    def on_fit_start(self) -> None:
        """Frozen modules are in eval mode on purpose: say so once, in place of Lightning's
        "Found N module(s) in eval mode" warning, which is silenced only when every module in
        eval mode lies inside a module this method froze (until training starts)."""
        frozen = {id(m) for module in self._frozen for m in module.modules()}
        in_eval = [m for m in self.modules() if not m.training]  # type: ignore[attr-defined]
        if not in_eval or any(id(m) not in frozen for m in in_eval):
            return
        from lightning.pytorch.utilities import rank_zero_info

        quiet_the_eval_mode_warning_of(self.trainer.fit_loop)  # type: ignore[attr-defined]
        names = ", ".join(dict.fromkeys(self._frozen_names))
        rank_zero_info(f"diffrep: the frozen {names} ({len(in_eval)} modules) stays in eval mode while "
                       f"{type(self).__name__} trains, on purpose (no dropout, no gradients)")

    def on_train_start(self) -> None:
        self.reseed_ranks()

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

    # --------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        params = self.trainable_parameters()
        # Not fused under fp16's gradient scaler, which must unscale the gradients before Lightning clips them.
        fused = bool(params) and params[0].device.type in ("cuda", "cpu") and not self.scales_gradients()
        return self.optimisation.build(params, fused)

    def scales_gradients(self) -> bool:
        """Whether the trainer runs fp16 mixed precision, whose gradient scaler scales the gradients."""
        return uses_gradient_scaler(getattr(getattr(self, "_trainer", None), "precision", ""))

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """``--trainer.gradient_clip_val`` with torch's clipping, as Lightning's fp32 path does it.
        Lightning's mixed-precision plugin refuses to clip for a fused optimizer (under fp16 the
        gradients would still be scaled), also in bf16, which has no scaler; so bf16 and fp32 clip
        here, and fp16 keeps Lightning's way (its optimizer is not fused)."""
        if self.scales_gradients():
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        else:
            clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def reseed_ranks(self) -> None:
        trainer = self.trainer  # type: ignore[attr-defined]
        rng.reseed_for_rank(trainer.global_rank, trainer.world_size)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Step, then update the EMA at once: callbacks' ``on_train_batch_end`` (checkpoints
        among them) run before the module's, so an EMA updated there would be saved one step
        stale and a resumed run would drift from an unbroken one."""
        super().optimizer_step(*args, **kwargs)  # type: ignore[misc]
        if self.ema is not None:
            self.ema.update()

    # ---------------------------------------------- validation under EMA weights
    def on_validation_epoch_start(self) -> None:
        if self.ema is not None:
            self._ema_stack = ExitStack()
            self._ema_stack.enter_context(self.ema.average_parameters())

    def on_validation_epoch_end(self) -> None:
        if self._ema_stack is not None:
            self._ema_stack.close()
            self._ema_stack = None

    # -------------------------------------------------------------- checkpoints
    def checkpoint_metadata(self) -> dict[str, Any]:
        """What a later stage needs to rebuild this model without the training config."""
        return {"schedule": vars(self.schedule_config).copy(), "image_shape": list(self.image_shape)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.ema is not None and self.ema.swapped_out is not None:
            # Saved while validation has the EMA weights in (a stop signal mid-validation): the
            # checkpoint keeps the training weights, or a resumed run would train on from the EMA.
            checkpoint["state_dict"].update({name: w.clone() for name, w in self.ema.swapped_out.items()})
        checkpoint["diffrep"] = {"method": type(self).__name__, **self.checkpoint_metadata()}
        checkpoint["rng_states"] = rng.capture()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of other model settings with a clear message, then restore the RNG
        streams so a resumed run draws the same t and noise as an unbroken one."""
        check_state_shapes(self, checkpoint)
        if checkpoint.get("rng_states"):
            rng.restore(checkpoint["rng_states"])
