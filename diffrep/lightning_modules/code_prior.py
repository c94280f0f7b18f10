"""Where a jointly trained autoencoder's new codes come from (DRL, VDRL, Diff-AE): a Gaussian fitted to
the training codes (a running estimate during training, refitted under the EMA weights at the end), N(0, I),
or a latent DPM trained on the codes (Diff-AE's generation), per ``CodePriorSettings``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from diffrep.checkpoints import CheckpointError
from diffrep.evaluation.features import encode_split
from diffrep.lightning_modules.api import UnsupportedOperation
from diffrep.lightning_modules.latent_prior import LatentPrior
from diffrep.lightning_modules.settings import CodePriorSettings


class CodePriorMixin:
    """The code prior of a module with ``latent_dim`` and ``time_dependent``; call ``setup_code_prior``."""

    prior: CodePriorSettings
    latent_dim: int
    time_dependent: bool

    def setup_code_prior(self, prior: CodePriorSettings) -> None:
        """The running Gaussian's buffers (saved with the model) and the latent DPM's path, checked now."""
        self.prior = prior
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))  # type: ignore[attr-defined]
        self.register_buffer("code_cov", torch.eye(self.latent_dim))  # type: ignore[attr-defined]
        checkpoint = prior.latent_dpm_checkpoint
        if checkpoint and not Path(checkpoint).is_file():
            raise CheckpointError(f"latent DPM checkpoint {checkpoint} does not exist; train one with "
                                  "`diffrep fit --config configs/diffae_latent.yaml` or fix the path")
        self.latent_dpm_checkpoint = checkpoint
        self._latent_prior: list[torch.nn.Module] = []  # loaded on first use, not part of the state

    @torch.no_grad()
    def track_code_prior(self, codes: Tensor) -> None:
        m = self.prior.momentum
        centred = codes.float() - codes.float().mean(0)
        self.code_mean.lerp_(codes.float().mean(0), 1 - m)
        self.code_cov.lerp_((centred.T @ centred).float() / max(len(codes) - 1, 1), 1 - m)

    def on_train_end(self) -> None:
        """Refit the code Gaussian on ``prior.items`` training codes under the EMA weights (the
        running estimate saw the raw weights of each step); under DDP the ranks share the work."""
        datamodule = getattr(self.trainer, "datamodule", None)  # type: ignore[attr-defined]
        if self.time_dependent or not self.prior.items or datamodule is None:
            return
        codes, _ = encode_split(self, datamodule.evaluation_split("train"), self.prior.items)
        codes = codes.to(self.code_mean)
        centred = codes - codes.mean(0)
        self.code_mean.copy_(codes.mean(0))
        self.code_cov.copy_(centred.T @ centred / max(len(codes) - 1, 1))

    def latent_prior(self) -> torch.nn.Module:
        if not self._latent_prior:
            self._latent_prior.append(LatentPrior(self.latent_dpm_checkpoint).to(self.model_device()))  # type: ignore[attr-defined]
        return self._latent_prior[0]

    def sample_codes(self, n: int, generator: torch.Generator | None = None, num_steps: int = 100) -> Tensor:
        """Codes to decode new images from: a latent DPM's samples when ``latent_dpm_checkpoint``
        is set (Diff-AE's generation), else a Gaussian fitted to the training codes (posterior
        means for VDRL, whose codes are not N(0, I) at the paper's KL weight), or N(0, I) for
        ``prior.kind: standard_normal``."""
        if self.time_dependent:
            raise UnsupportedOperation("a time-dependent code has no prior to sample from; use reconstruct/interpolate")
        if self.latent_dpm_checkpoint:
            return self.latent_prior().sample_codes(n, num_steps, generator)
        noise = torch.randn(n, self.latent_dim, generator=generator, device=self.model_device())  # type: ignore[attr-defined]
        if self.prior.kind == "standard_normal":
            return noise
        eye = torch.eye(self.latent_dim, device=noise.device)
        chol = torch.linalg.cholesky(self.code_cov.float() + 1e-5 * eye)
        return self.code_mean + noise @ chol.T
