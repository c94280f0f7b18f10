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
    or, with ``warmup_from_zero``, from 0 as score_sde and Diff-AE do."""

    optimizer: str | dict[str, Any] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmup_from_zero: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.optimizer, dict):  # fail when the method is built, not at its first step
            plugins.import_class(plugins.class_path_of(self.optimizer, "optimizer"), torch.optim.Optimizer,
                                 "optimizer")
        elif self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose 'adam', 'adamw' or your own: "
                              "{class_path: torch.optim.SGD, init_args: {momentum: 0.9}}")

    def build(self, params: list[nn.Parameter], fused: bool) -> Any:
        """The optimiser (fused Adam where ``fused``: one kernel per step, and it takes NonFiniteGuard's
        found_inf), with its per-step warm-up schedule when there is one (Lightning's return form)."""
        if isinstance(self.optimizer, dict):
            optimizer = plugins.build(self.optimizer, torch.optim.Optimizer, "optimizer",
                                      {"lr": self.lr, "betas": self.betas, "weight_decay": self.weight_decay}, params)
        else:
            cls = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
            optimizer = cls(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay, fused=fused or None)
        if not self.warmup_steps:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.warmup_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

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
