"""Diff-AE (Preechakul et al., CVPR 2022), the autoencoder PDAE is measured against.

The same structure as DRL — an encoder trained jointly with a code-conditioned denoiser — on a
DDPM (VP) schedule with L_simple and uniform t, Diff-AE's semantic encoder (single-conv blocks, attention
at 16x16, pooling; ``diffrep.nets.encoders.HalfUNetEncoder``), and
the U-Net's ResBlocks modulated as h = (GN(h)(1 + t_s) + t_b)(1 + z_s) (``z_mode: scale``).
Decoding is DDIM; DDIM inversion gives the stochastic code x_T. Everything else is DRL's.

``network.kind``: ``unet`` (diffrep's guided-diffusion U-Net with ``z_mode: scale``, the CPU default)
or ``beatgans`` (``diffrep.nets.beatgans.BeatGANsAutoencUNet``: the official
``BeatGANsAutoencModel``'s denoiser, proven equal to it on shared weights by
``benchmarks/official_parity.py --diffae``; its settings are ``BeatGANsConfig``'s,
attention resolutions in pixels). The two differ in the time embedding's width, where the code
enters (as it is, not through an embedding), GroupNorm groups and dropout; the paper configs use
``beatgans``.

Released checkpoints (``official_checkpoint``): phizaz/diffae's ``last.ckpt`` files (Lightning 1.4,
``model.*`` raw and ``ema_model.*`` evaluated; read without running their pickled callbacks,
``diffrep.official_checkpoints``) load into ``network.kind: beatgans`` with the paper's widths
(configs/diffae_ffhq128.yaml): the denoiser by name, the semantic encoder layer by layer in order.
A latent variant's ``latent_net`` is not read here.
"""

from __future__ import annotations

from typing import Any

from diffrep.diffusion.objective import DenoisingObjective
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.lightning_modules.denoisers import network_settings
from diffrep.lightning_modules.drl import DRL
from diffrep.lightning_modules.optimisation import OptimiserSettings
from diffrep.lightning_modules.settings import CodeSettings, EMASettings


class DiffAE(DRL):
    """DRL's arguments with Diff-AE's defaults: the half-U-Net encoder, 512-dim codes, L_simple, lr 1e-4,
    EMA 0.9999, the U-Net with the code scaling every ResBlock (or ``network: {kind: beatgans}``)."""

    def __init__(
        self,
        network: str | dict[str, Any] | None = None,
        *args: Any,
        encoder: str | dict[str, Any] = "halfunet",
        code: CodeSettings = CodeSettings(latent_dim=512),
        objective: DenoisingObjective = DenoisingObjective(),
        optimisation: OptimiserSettings = OptimiserSettings(lr=1e-4),
        ema: EMASettings = EMASettings(decay=0.9999),
        **kwargs: Any,
    ) -> None:
        kind, _, z_mode = network_settings(network)
        if kind == "unet" and z_mode != "scale":
            raise ConfigError(f"Diff-AE scales every ResBlock by its code (network.z_mode 'scale'), not {z_mode!r}; "
                              "use DRL for other code injections")
        super().__init__(network, *args, encoder=encoder, code=code, objective=objective, optimisation=optimisation,
                         ema=ema, **kwargs)

    @staticmethod
    def default_schedule() -> ScheduleConfig:
        """DDPM: linear betas 1e-4..0.02 over T = 1000."""
        return ScheduleConfig(kind="discrete", num_timesteps=1000, beta_schedule="linear")

    official_layout = "diffae"  # released checkpoints: official_loading.diffae_state
