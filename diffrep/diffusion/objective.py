"""The denoising objective as one object: which times are drawn, how each is weighted, how the
per-pixel error is reduced (the role of NVlabs/edm's ``training/loss.py``, in eps space).

    loss = mean_b  lambda(t_b) * reduce_pixels(|eps - eps_hat(x_t, t_b)|^p),  t_b ~ p(t)

Plain torch, no Lightning: a method hands it its schedule, its clean batch and its prediction
``eps_hat(x_t, t)`` and gets the loss and the per-sample error back. The papers' objectives are
settings of this one class (``PRESETS``): DDPM's L_simple, PDAE's lambda_t, DRL's summed score loss,
Diff-AE's L1 latent DPM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from diffrep.diffusion.process import q_sample
from diffrep.diffusion.schedule import NoiseSchedule
from diffrep.diffusion.weighting import check_names, loss_weight, sample_time
from diffrep.errors import ConfigError

PredictEps = Callable[[Tensor, Tensor], Tensor]
REDUCTIONS = ("mean", "half_sum")
NORMS = ("l2", "l1")


@dataclass(frozen=True)
class DenoisingObjective:
    """``weighting`` and ``time_sampler`` are the names of ``diffrep.diffusion.weighting`` (``gamma``
    goes to the weights that take one); ``norm`` 'l2' or 'l1'; ``reduction`` over the pixels of one
    sample: 'mean', or 'half_sum' = 0.5 x the sum (score_sde's and DRL's loss, whose regularisers are
    stated against it)."""

    weighting: str = "uniform"
    time_sampler: str = "uniform"
    gamma: float | None = None
    norm: str = "l2"
    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_names(self.weighting, self.time_sampler)
        if self.norm not in NORMS:
            raise ConfigError(f"unknown norm {self.norm!r}; choose one of {list(NORMS)}")
        if self.reduction not in REDUCTIONS:
            raise ConfigError(f"unknown loss reduction {self.reduction!r}; choose one of {list(REDUCTIONS)}")

    def sample_time(self, schedule: NoiseSchedule, n: int, device: torch.device | str) -> Tensor:
        return sample_time(self.time_sampler, schedule, n, device)

    def __call__(self, schedule: NoiseSchedule, x0: Tensor, predict_eps: PredictEps,
                 t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(loss, per-sample mean error). Works for images and for flat codes."""
        if t is None:
            t = self.sample_time(schedule, x0.shape[0], x0.device)
        eps = torch.randn_like(x0)
        x_t = q_sample(schedule, x0, t, eps)
        error = eps - predict_eps(x_t, t).float()
        per_sample = (error.abs() if self.norm == "l1" else error.pow(2)).flatten(1).mean(1)
        loss = (loss_weight(self.weighting, schedule, t, self.gamma) * per_sample).mean()
        if self.reduction == "half_sum":  # 0.5 * sum over pixels, computed as the mean times that count
            loss = 0.5 * x0[0].numel() * loss
        return loss, per_sample

    def regulariser_scale(self, x0: Tensor) -> float:
        """The factor a regulariser stated against the half-summed loss (DRL's lambda_z, VDRL's KL)
        takes against this reduction: 1 for 'half_sum', 2 / pixels for 'mean'."""
        return 1.0 if self.reduction == "half_sum" else 2.0 / x0[0].numel()


PRESETS: dict[str, DenoisingObjective] = {
    "ddpm": DenoisingObjective(),  # L_simple, t ~ U{0..T-1}
    "pdae": DenoisingObjective(weighting="pdae", gamma=0.1),  # lambda_t = SNR^0.1 / (1 + SNR)
    "drl": DenoisingObjective(weighting="sigma2", reduction="half_sum"),  # score_sde's loss, summed
    "latent_l1": DenoisingObjective(norm="l1"),  # Diff-AE's latent DPM
}
