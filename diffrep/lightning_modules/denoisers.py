"""One interface for every denoising network: eps_hat = eps(net, schedule, x_t, t, z).

Networks differ in what they read and what they return (NVlabs/edm states this once per network
family in a preconditioning wrapper). Here each network class declares its convention in a class
attribute ``output`` and ``eps_of`` turns its output into the eps prediction every diffrep method,
loss and sampler works with, so no method branches on which network it holds:

- ``"eps"``: guided-diffusion's U-Net, Diff-AE's BeatGANs U-Net, PDAE's: read the schedule's network
  input (x_t, scaled to unit variance on the VE SDE) and the model time, return eps;
- ``"scaled_score"``: score_sde's NCSN++ with ``scale_by_sigma``: reads x_t as it is and sigma(t),
  returns sigma * score = -eps.

Plain torch (no Lightning), kept beside the methods that use it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from diffrep.diffusion.process import network_input
from diffrep.diffusion.schedule import NoiseSchedule
from diffrep.errors import ConfigError

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
