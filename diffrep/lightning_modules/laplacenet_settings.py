"""LaplaceNet's settings, one typed group per concern (as ``settings.py`` does for the diffusion methods):
which weights start it, how the noise level t is chosen, the graph pseudo-labels, mixup and the SGD
schedule. Defaults are the official command's (korabs-x/representation_score_based, LaplaceNet/). Plain
Python (no Lightning, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffrep.errors import ConfigError
from diffrep.lightning_modules.settings import Standardisation

#: the official check_t grid, 0..1 in steps of 0.1 kept inside (0, 1)
T_CANDIDATES = tuple(float(t) for t in np.linspace(0, 1, 11).clip(1e-2, 1 - 1e-2))
WEIGHTS = ("raw", "ema")


@dataclass(frozen=True)
class StartSettings:
    """Which weights start the classifier: ``checkpoint`` (a diffrep last.ckpt of a method with an encoder, an
    official DRL ``encoder_state_*.pth``, or None for random init), its ``weights`` ('raw', what the official
    code hands LaplaceNet, or 'ema'), and ``init_t``, where a time-conditioned WRN's param_t starts (logit)."""

    checkpoint: str | None = None
    weights: str = "raw"
    init_t: float = 0.5

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ConfigError(f"unknown start.weights {self.weights!r}; choose 'raw' (the official choice) or 'ema'")


@dataclass(frozen=True)
class ChooseT:
    """The official ``--check_t``: when ``enabled``, one short supervised run of ``epochs`` warm-up epochs per
    t of ``candidates``; the state with the lowest training loss is kept (no held-out split is read)."""

    enabled: bool = False
    candidates: tuple[float, ...] = T_CANDIDATES
    epochs: int = 10


@dataclass(frozen=True)
class PseudoLabelSettings:
    """The graph pseudo-labels of every semi-supervised epoch (``diffrep.evaluation.graph_pseudo_labels``):
    ``knn`` neighbours, the diffusion ``alpha``, the CG solve's ``cg_iterations`` and ``cg_tol``, the
    ``neighbour_search`` ('auto', 'faiss', 'exact'), and ``weighted``: the loss uses the pseudo-labels'
    entropy weights (the official loss ignores them)."""

    knn: int = 50
    alpha: float = 0.99
    cg_iterations: int = 30
    cg_tol: float = 1e-3
    neighbour_search: str = "auto"
    weighted: bool = False


@dataclass(frozen=True)
class MixupSettings:
    """Mixup with lambda ~ Beta(``alpha``, ``alpha``): in the semi-supervised phase (``semi``, always in the
    official loop) and in the warm-up (``warmup``, the official ``--mixup``, off in the DRL command)."""

    alpha: float = 1.0
    warmup: bool = False
    semi: bool = True

    def __post_init__(self) -> None:
        if self.alpha <= 0:
            raise ConfigError(f"mixup.alpha is the Beta distribution's parameter, > 0; got {self.alpha}")


@dataclass(frozen=True)
class SGDSchedule:
    """SGD as the official code runs it: ``lr``, ``momentum``, ``nesterov``, ``weight_decay``, and the cosine
    ramp-down of the lr over max_epochs + ``rampdown_extra_epochs``."""

    lr: float = 0.03
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    rampdown_extra_epochs: int = 10


#: LaplaceNet's groups, by argument name
LAPLACENET_GROUPS: dict[str, type] = {
    "start": StartSettings,
    "choose_t": ChooseT,
    "pseudo_labels": PseudoLabelSettings,
    "mixup": MixupSettings,
    "optimisation": SGDSchedule,
    "standardise": Standardisation,
}
