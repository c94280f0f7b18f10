"""The settings a method takes, in groups: one typed object per concern instead of one flat argument each.

A method's ``__init__`` takes a handful of these (``DRL``: 12 arguments, not 33), so a config reads by
concern (``optimisation.lr``, ``ema.decay``, ``code.latent_dim``), ``--print_config`` shows each group
with its defaults, and a command line sets one field (``--model.init_args.optimisation.lr 3e-4``) while the
method's own defaults fill the rest (jsonargparse reads them from the default instance in the signature).
A YAML file may give a group in part too: each group is annotated by its class alone (``code:
CodeSettings``), so jsonargparse lays the given fields over that default instance. An annotation
``CodeSettings | dict`` would build the class from the given fields with the *class's* defaults (VDRL's
``code: {latent_dim: 32}`` would lose ``variational: true``, PDAE's ``objective: {gamma: 0.1}`` its
weighting); a dict given in Python goes through ``grouped_settings``, which does the same.

Each group is a frozen dataclass that is also accepted as a plain dict: saved hyper-parameters hold
dicts (``as_saved``), so a checkpoint loads with ``torch.load(weights_only=True)`` and rebuilds the module.
Settings written before the groups existed are translated by ``diffrep.lightning_modules.migration``.
A group may also be the user's own subclass, given as ``{class_path, init_args}`` (e.g. an objective
with a weighting of their own: ``objective: {class_path: my_losses.MyObjective, init_args: {...}}``):
a dataclass subclass of the group's class, saved back as its class path and fields.
Plain Python (no Lightning, no torch).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from diffrep import plugins
from diffrep.diffusion.objective import DenoisingObjective
from diffrep.errors import ConfigError
from diffrep.lightning_modules.optimisation import OptimiserSettings

T = TypeVar("T")


@dataclass(frozen=True)
class EMASettings:
    """The exponential moving average of the trainable weights (what evaluation and later stages use):
    ``decay`` (None: no EMA) and ``ramp``, score_sde's decay min(decay, (1 + n) / (10 + n)) after n updates."""

    decay: float | None = 0.9999
    ramp: bool = False


@dataclass(frozen=True)
class FastPaths:
    """GPU speed options: ``channels_last`` (NHWC) and ``compile`` (False, True or a torch.compile mode, e.g.
    'reduce-overhead' for CUDA graphs) on the denoising network."""

    channels_last: bool = False
    compile: bool | str = False


@dataclass(frozen=True)
class SamplingSettings:
    """How images are generated: ``sampler`` 'ddim' (every method), or the VE SDE's 'pc' / 'ode' (DRL's
    official samplers), and ``timestep_grid``, the DDIM grid ('linspace', or an official code's)."""

    sampler: str = "ddim"
    timestep_grid: str = "linspace"


@dataclass(frozen=True)
class CodeSettings:
    """The learned code z = E(x0) or E(x0, t): ``latent_dim``; ``variational`` (VDRL) with ``kl_weight``
    (the paper's lambda_z) or ``l1`` (reg-DRL, lambda_z ||z||_1), both stated against the half-summed loss;
    ``time_dependent`` E(x0, t), whose features for a probe are the codes at ``encode_times`` (fractions of
    the time range) joined."""

    latent_dim: int = 32
    variational: bool = False
    kl_weight: float = 1e-5
    l1: float = 0.0
    time_dependent: bool = False
    encode_times: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class CodePriorSettings:
    """Where new codes come from for ``sample``: ``kind`` 'fitted' (a Gaussian fitted to the training codes:
    a running estimate with ``momentum``, refitted on ``items`` codes at the end of fit) or 'standard_normal';
    a ``latent_dpm_checkpoint`` (Diff-AE's generation) replaces both."""

    kind: str = "fitted"
    momentum: float = 0.99
    items: int = 10000
    latent_dpm_checkpoint: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("fitted", "standard_normal"):
            raise ConfigError(f"unknown prior.kind {self.kind!r}; choose 'fitted' or 'standard_normal'")


@dataclass(frozen=True)
class Standardisation:
    """Per-channel data standardisation, (x - mean) / std on pixels in [0, 1]: the official DRL code's data
    space on CIFAR-10. Unset (None), the diffusion runs on images in [-1, 1] like every diffrep model."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def as_settings(value: Any, cls: type[T], name: str, default: T | None = None) -> T:
    """``value`` (an instance, a dict of its fields, or None for ``default``) as a ``cls``; an unknown field
    is one line naming the ones the group has."""
    if value is None:
        if default is None:
            raise ConfigError(f"{name} is required")
        return default
    if isinstance(value, cls):
        return value
    if isinstance(value, dict) and "class_path" in value:  # the user's own subclass of the group
        built = plugins.build(value, cls, name)
        if not dataclasses.is_dataclass(built):
            raise ConfigError(f"{name} class_path {value['class_path']} must be a dataclass (a subclass of "
                              f"{cls.__name__} with @dataclass(frozen=True)), so its settings are saved")
        return built
    if not isinstance(value, dict):
        raise ConfigError(f"{name} takes a mapping of {fields_of(cls)}; got {value!r}")
    unknown = sorted(set(value) - set(fields_of(cls)))
    if unknown:
        raise ConfigError(f"{name} has no setting {', '.join(map(repr, unknown))}; it has {', '.join(fields_of(cls))}")
    base = dataclasses.asdict(default) if default is not None and isinstance(default, cls) else {}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in {**base, **value}.items()}
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{name} needs {' and '.join(missing)} as well (set {', '.join(fields_of(cls))} together)")
    return cls(**values)


def fields_of(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def as_saved(value: Any) -> Any:
    """A settings object as the plain data a checkpoint's hyper-parameters hold (dicts, tuples, numbers);
    a user's own subclass of a group as ``{class_path, init_args}``, which ``as_settings`` builds back."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: as_saved(getattr(value, f.name)) for f in dataclasses.fields(value)}
        cls = type(value)
        if cls.__module__.split(".")[0] == "diffrep":
            return fields
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": fields}
    if isinstance(value, dict):
        return {k: as_saved(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return type(value)(as_saved(v) for v in value) if isinstance(value, tuple) else [as_saved(v) for v in value]
    return value


#: every settings group a method may take, by its argument name
GROUPS: dict[str, type] = {
    "objective": DenoisingObjective,
    "optimisation": OptimiserSettings,
    "ema": EMASettings,
    "sampling": SamplingSettings,
    "fast": FastPaths,
    "code": CodeSettings,
    "prior": CodePriorSettings,
    "standardise": Standardisation,
}


def grouped_settings(method: type, groups: dict[str, type] | None = None, **given: Any) -> dict[str, Any]:
    """Each ``given`` group as its settings object (of ``groups``' type for its name, ``GROUPS`` by default);
    a dict's missing fields (and None) take the defaults in ``method``'s signature (the first class of its MRO
    whose ``__init__`` names the group), so ``DRL(optimisation={"lr": 1e-3})`` keeps DRL's other optimiser
    defaults."""
    groups = groups or GROUPS
    out = {}
    for name, value in given.items():
        default = next((p.default for c in method.__mro__ if "__init__" in vars(c)
                        for p in [inspect.signature(c.__init__).parameters.get(name)]
                        if p is not None and p.default is not inspect.Parameter.empty), None)
        if value is None and default is None:
            out[name] = None  # an optional group left unset (e.g. standardise)
            continue
        out[name] = as_settings(value, groups[name], name, default)
    return out


def only_ddim(sampling: SamplingSettings, method: str) -> None:
    if sampling.sampler != "ddim":
        raise ConfigError(f"{method} samples with DDIM; sampling.sampler {sampling.sampler!r} is DRL's on the VE SDE")
