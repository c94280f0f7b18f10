"""The optimiser, its warm-up and gradient clipping: one object built from the method's settings, and
the module hooks that use it (``OptimisationMixin``: ``configure_optimizers``, ``configure_gradient_clipping``),
so the choices (fused Adam, the two warm-up conventions, clipping outside Lightning's mixed-precision
plugin) are stated and tested in one place. No Lightning import: the hooks are plain methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from diffrep import plugins
from diffrep.errors import ConfigError
from diffrep.lightning_modules.api import uses_gradient_scaler


@dataclass(frozen=True)
class OptimiserSettings:
    """``optimizer``: 'adam', 'adamw' or the user's ``{class_path, init_args}`` (offered lr, betas and
    weight decay); ``warmup_steps`` of linear warm-up, from lr / warmup (the first step already learns)
    or, with ``warmup_from_zero``, from 0 as score_sde and Diff-AE do; ``lr_schedule``, any
    ``torch.optim.lr_scheduler`` class as ``{class_path, init_args}`` (e.g. CosineAnnealingLR), stepped
    every optimiser step (or epoch: ``lr_schedule_interval``) after the warm-up. The papers' recipes
    keep the rate constant after warm-up, so there is none by default."""

    optimizer: str | dict[str, Any] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmup_from_zero: bool = False
    lr_schedule: dict[str, Any] | None = None
    lr_schedule_interval: str = "step"

    def __post_init__(self) -> None:
        if self.lr_schedule is not None:
            plugins.import_class(plugins.class_path_of(self.lr_schedule, "lr_schedule"),
                                 torch.optim.lr_scheduler.LRScheduler, "lr_schedule")
        if self.lr_schedule_interval not in ("step", "epoch"):
            raise ConfigError(f"lr_schedule_interval is 'step' or 'epoch', not {self.lr_schedule_interval!r}")
        if self.lr_schedule is not None and self.warmup_steps and self.lr_schedule_interval != "step":
            raise ConfigError("the warm-up counts optimiser steps: with warmup_steps, keep lr_schedule_interval 'step'")
        if isinstance(self.optimizer, dict):  # fail when the method is built, not at its first step
            plugins.import_class(plugins.class_path_of(self.optimizer, "optimizer"), torch.optim.Optimizer,
                                 "optimizer")
        elif self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose 'adam', 'adamw' or your own: "
                              "{class_path: torch.optim.SGD, init_args: {momentum: 0.9}}")

    def build(self, params: list[nn.Parameter], fused: bool) -> Any:
        """The optimiser (fused Adam where ``fused``: one kernel per step, and it takes NonFiniteGuard's
        found_inf), with its warm-up and ``lr_schedule`` when there are (Lightning's return form)."""
        if isinstance(self.optimizer, dict):
            optimizer = plugins.build(self.optimizer, torch.optim.Optimizer, "optimizer",
                                      {"lr": self.lr, "betas": self.betas, "weight_decay": self.weight_decay}, params)
        else:
            cls = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
            optimizer = cls(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay, fused=fused or None)
        scheduler = self.schedule(optimizer)
        if scheduler is None:
            return optimizer
        interval = self.lr_schedule_interval if self.lr_schedule is not None else "step"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def schedule(self, optimizer: torch.optim.Optimizer) -> Any:
        """The warm-up, the user's ``lr_schedule``, or the warm-up then the schedule (``SequentialLR``,
        switching at ``warmup_steps``); None for a constant rate."""
        warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, self.warmup_factor) if self.warmup_steps else None
        if self.lr_schedule is None:
            return warmup
        user = plugins.build(self.lr_schedule, torch.optim.lr_scheduler.LRScheduler, "lr_schedule", None, optimizer)
        if warmup is None:
            return user
        return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, user], milestones=[self.warmup_steps])

    def warmup_factor(self, step: int) -> float:
        """lr x this at optimiser step ``step``: (step + 1) / warmup, or step / warmup from zero, up to 1."""
        return min(1.0, (step if self.warmup_from_zero else step + 1) / self.warmup_steps)


def clip_gradients(optimizer: torch.optim.Optimizer, value: float | None, algorithm: str | None) -> None:
    """``--trainer.gradient_clip_val`` with torch's clipping, as Lightning's fp32 path does it (by norm,
    or by value when ``algorithm`` is 'value'); nothing for None or <= 0."""
    if value is None or value <= 0:
        return
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(params, value)
    else:
        torch.nn.utils.clip_grad_norm_(params, value)


class OptimisationMixin:
    """The LightningModule hooks that use ``self.optimisation`` (an ``OptimiserSettings``): the optimiser
    over the trainable parameters, and clipping that works for a fused one; mix in before
    ``lightning.LightningModule``."""

    optimisation: OptimiserSettings

    def configure_optimizers(self) -> Any:
        params = self.trainable_parameters()  # type: ignore[attr-defined]
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
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)  # type: ignore[misc]
        else:
            clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
