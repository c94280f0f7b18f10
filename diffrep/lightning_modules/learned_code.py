"""The learned code q(z | x0[, t]) of DRL/VDRL: a static code E(x0), or a time-dependent one E(x0, t), from
any encoder, with the evaluation API's code hooks (``decoding.CodeDecodingMixin``) for both.

A time-dependent code is read at the noisy sample's t. The official time-conditioned WRN sees log sigma(t)
in every block (it reads t_min for a static code, as the official code reads t = 0); any other encoder
gets ``TimeCodeHead`` on its features. A variational code's encoder emits (mean, log-variance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from diffrep.lightning_modules.api import UnsupportedOperation
from diffrep.lightning_modules.settings import CodeSettings
from diffrep.nets.codes import TimeCodeHead
from diffrep.nets.encoders import build_encoder, takes_noise_level

CodeFn = Callable[[Tensor], Tensor]  # model time t -> code z (batch-aligned)


class LearnedCodeMixin:
    """``encoder`` (+ ``time_head``) and the code hooks; call ``setup_code``. Needs the backbone's
    ``schedule``, ``inference`` and ``model_device`` and the data space's ``to_data_space``."""

    encoder: torch.nn.Module
    time_head: TimeCodeHead | None
    schedule: Any
    to_data_space: Callable[[Tensor], Tensor]
    inference: Callable[[], Any]
    model_device: Callable[[], torch.device]

    def setup_code(self, encoder: str | dict[str, Any], code: CodeSettings, in_channels: int, image_size: int) -> None:
        """Build the encoder (and the time head where the encoder does not read the noise level itself)."""
        self.latent_dim, self.variational, self.kl_weight = code.latent_dim, code.variational, code.kl_weight
        self.code_l1 = code.l1
        self.time_dependent, self.encode_times = code.time_dependent, list(code.encode_times)
        code_out = 2 * code.latent_dim if code.variational else code.latent_dim
        with_head = code.time_dependent and not takes_noise_level(encoder)
        feature_dim = 4 * code.latent_dim if with_head else code_out
        self.encoder = build_encoder(encoder, in_channels, image_size, feature_dim)
        self.time_head = TimeCodeHead(feature_dim, code_out) if with_head else None

    def code_params(self, x0: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(mean, logvar) of q(z | x0[, t]) for images x0 in [-1, 1]; logvar is None for a deterministic code."""
        if t is None and self.time_dependent:
            raise ValueError("a time-dependent code needs t")
        x0 = self.to_data_space(x0)
        if getattr(self.encoder, "takes_noise_level", False):
            if t is None:  # a static code from the time-conditioned WRN: at t_min (official: t = 0)
                dtype = torch.long if self.schedule.discrete else torch.float32
                t = torch.full((x0.shape[0],), self.schedule.t_min, device=x0.device, dtype=dtype)
            h = self.encoder(x0, self.schedule.sigma(t).float().log())
        else:
            h = self.encoder(x0)
        if self.time_head is not None:
            h = self.time_head(h, self.schedule.model_time(t))
        if self.variational:
            mean, logvar = h.chunk(2, dim=1)
            return mean, logvar.clamp(-30.0, 20.0)
        return h, None

    def code_of(self, x0: Tensor) -> CodeFn:
        """t -> the (mean) code of x0 at t; a static code ignores t and is computed once."""
        if self.time_dependent:
            return lambda t: self.code_params(x0, t)[0]
        return self.code_from_vector(self.code_params(x0)[0])

    def times_at(self, fractions: Sequence[float], n: int) -> list[Tensor]:
        """Model-independent times at fractions of [t_min, t_max], one batch of n per fraction."""
        lo, hi = self.schedule.t_min, self.schedule.t_max
        dtype = torch.long if self.schedule.discrete else torch.float32
        return [torch.full((n,), round(v) if self.schedule.discrete else v, device=self.model_device(), dtype=dtype)
                for v in (lo + f * (hi - lo) for f in fractions)]

    def encode(self, x0: Tensor, times: Sequence[float] | None = None) -> Tensor:
        """The mean code; for a time-dependent code, the codes at ``times`` (fractions) joined."""
        with self.inference():
            if not self.time_dependent:
                return self.code_params(x0)[0]
            ts = self.times_at(times if times is not None else self.encode_times, x0.shape[0])
            return torch.cat([self.code_params(x0, t)[0] for t in ts], dim=1)

    def code_from_vector(self, z: Tensor) -> CodeFn:
        return lambda t: z

    def check_editable(self) -> None:
        if self.time_dependent:
            raise UnsupportedOperation("a time-dependent code E(x0, t) is a curve over t, not one vector to move "
                                       "along a direction; edits need a static code (time_dependent: false)")

    def code_path(self, ends: CodeFn, weight: Tensor) -> CodeFn:
        """lerp the two codes, at every t for a time-dependent code."""

        def path(t: Tensor) -> Tensor:
            z = ends(t[:1].expand(2))
            return torch.lerp(z[:1], z[1:], weight[:, None])

        return path
