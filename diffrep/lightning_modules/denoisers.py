"""One interface for every denoising network: eps_hat = eps(net, schedule, x_t, t, z).

Networks differ in what they read and what they return (NVlabs/edm states this once per network
family in a preconditioning wrapper). Here each network class declares its convention in a class
attribute ``output`` and ``eps_of`` turns its output into the eps prediction every diffrep method,
loss and sampler works with, so no method branches on which network it holds:

- ``"eps"``: guided-diffusion's U-Net, Diff-AE's BeatGANs U-Net, PDAE's: read the schedule's network
  input (x_t, scaled to unit variance on the VE SDE) and the model time, return eps;
- ``"scaled_score"``: score_sde's NCSN++ with ``scale_by_sigma``: reads x_t as it is and sigma(t),
  returns sigma * score = -eps.

A user's own code-conditioned denoiser plugs in the same way (``network: {class_path, init_args}``,
``UserNetwork``): any ``nn.Module`` called as ``net(x, t, z)`` that declares its ``output`` (default 'eps').

Plain torch (no Lightning), kept beside the methods that use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from diffrep import plugins
from diffrep.diffusion.process import network_input
from diffrep.diffusion.schedule import NoiseSchedule
from diffrep.errors import ConfigError
from diffrep.lightning_modules.settings import fields_of
from diffrep.nets.beatgans import BeatGANsAutoencUNet, BeatGANsConfig
from diffrep.nets.ncsnpp import NCSNpp, NCSNppConfig
from diffrep.nets.unet import UNet, UNetConfig

Layout = Callable[[Tensor], Tensor]


def _keep(x: Tensor) -> Tensor:
    return x


def eps_from_eps(net: nn.Module, schedule: NoiseSchedule, x_t: Tensor, t: Tensor, z: Tensor | None,
                 layout: Layout = _keep) -> Tensor:
    args = (layout(network_input(schedule, x_t, t)), schedule.model_time(t))
    return net(*args) if z is None else net(*args, z)


def eps_from_scaled_score(net: nn.Module, schedule: NoiseSchedule, x_t: Tensor, t: Tensor, z: Tensor | None,
                          layout: Layout = _keep) -> Tensor:
    return -net(layout(x_t), schedule.sigma(t).float(), z)


CONVENTIONS = {"eps": eps_from_eps, "scaled_score": eps_from_scaled_score}


def eps_of(net: nn.Module) -> Callable[..., Tensor]:
    """The function that gives ``net``'s eps prediction, from its class's ``output`` (default 'eps')."""
    output = getattr(net, "output", "eps")
    if output not in CONVENTIONS:
        raise ConfigError(f"{type(net).__name__}.output is {output!r}; a denoiser returns one of {list(CONVENTIONS)}")
    return CONVENTIONS[output]


# ------------------------------------------------------------------ the code-conditioned networks
@dataclass(frozen=True)
class UserNetwork:
    """A denoiser given by ``{class_path, init_args}``: any ``nn.Module`` called as ``net(x, t, z)`` with the
    convention its ``output`` names (``CONVENTIONS``; 'eps': x scaled to unit variance, t the schedule's
    model time, returns eps). It is offered ``latent_dim`` and ``z_dim`` (the code's width), and its
    ``init_args`` state the images it denoises (``in_channels``, ``image_size``): the method draws its noise
    and builds its encoder from them before the network exists."""

    spec: dict[str, Any]

    def __post_init__(self) -> None:
        plugins.import_class(plugins.class_path_of(self.spec, "network"), nn.Module, "network")
        missing = [k for k in ("in_channels", "image_size") if k not in (self.spec.get("init_args") or {})]
        if missing:
            raise ConfigError(f"a network given by class_path states the images it denoises: add "
                              f"{' and '.join(missing)} to its init_args (it is offered latent_dim and z_dim)")

    @property
    def in_channels(self) -> int:
        return int(self.spec["init_args"]["in_channels"])

    @property
    def image_size(self) -> int:
        return int(self.spec["init_args"]["image_size"])

    def as_dict(self) -> dict[str, Any]:
        return {"class_path": self.spec["class_path"], "init_args": dict(self.spec["init_args"])}

    def build(self, latent_dim: int | None) -> nn.Module:
        """The network, offered the code's width (None: an unconditional DPM's, offered nothing)."""
        offered = {} if latent_dim is None else {"latent_dim": latent_dim, "z_dim": latent_dim}
        return plugins.build(self.spec, nn.Module, "network", offered)


#: network kind -> its settings class; ``build_code_denoiser`` builds the network a method holds
NETWORK_SETTINGS: dict[str, type[UNetConfig]] = {"unet": UNetConfig, "ncsnpp": NCSNppConfig, "beatgans": BeatGANsConfig}


def network_settings(spec: str | dict | UNetConfig | None) -> tuple[str, Any, str | None]:
    """(kind, settings, z_mode) of a ``network`` setting: a kind name, a settings object, or ``{kind: NAME,
    z_mode: ..., <the kind's settings>}`` ('unet', the default: diffrep's guided-diffusion U-Net,
    ``UNetConfig``; 'ncsnpp': the official NCSN++, ``NCSNppConfig``; 'beatgans': Diff-AE's official
    denoiser, ``BeatGANsConfig``), or your own ``{class_path, init_args}`` (kind 'class_path', ``UserNetwork``).
    ``z_mode`` is how the U-Net takes the code ('scale', Diff-AE's, by default; or 'ncsnpp'); the other kinds
    take it their own way."""
    if isinstance(spec, dict) and "class_path" in spec:
        return "class_path", UserNetwork(dict(spec)), None
    if isinstance(spec, UNetConfig):  # a settings object names its kind by its class
        kind = next((k for k, cls in NETWORK_SETTINGS.items() if k != "unet" and type(spec) is cls), "unet")
        spec = {"kind": kind, **spec.as_dict()}
    fields = {"kind": spec} if isinstance(spec, str) else dict(spec or {})
    kind = fields.pop("kind", "unet")
    z_mode = fields.pop("z_mode", None)
    if kind not in NETWORK_SETTINGS:
        raise ConfigError(f"unknown network kind {kind!r}; choose one of {', '.join(NETWORK_SETTINGS)}")
    if kind != "unet" and z_mode not in (None, {"ncsnpp": "ncsnpp", "beatgans": "scale"}[kind]):
        raise ConfigError(f"the {kind} network takes the code its own way; z_mode {z_mode!r} is for kind: unet "
                          "(leave network.z_mode unset)")
    known = fields_of(NETWORK_SETTINGS[kind])
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ConfigError(f"network (kind {kind}) has no setting {', '.join(map(repr, unknown))}; "
                          f"it has kind, z_mode, {', '.join(sorted(known))}")
    return kind, NETWORK_SETTINGS[kind](**fields), z_mode or ("scale" if kind == "unet" else None)


def build_code_denoiser(kind: str, settings: Any, latent_dim: int, z_mode: str | None) -> nn.Module:
    """The code-conditioned denoiser of ``network_settings``' output."""
    if kind == "class_path":
        return settings.build(latent_dim)
    if kind == "ncsnpp":
        return NCSNpp(settings, z_dim=latent_dim)
    if kind == "beatgans":
        return BeatGANsAutoencUNet(settings, z_dim=latent_dim)
    return UNet(settings, z_dim=latent_dim, z_mode=z_mode or "scale")


def saved_network(kind: str, settings: Any, z_mode: str | None) -> dict[str, Any]:
    """A ``network`` setting as plain data (the checkpoint's hyper-parameters), read back by ``network_settings``."""
    if kind == "class_path":
        return settings.as_dict()
    return {"kind": kind, **({"z_mode": z_mode} if kind == "unet" else {}), **settings.as_dict()}
