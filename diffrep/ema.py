"""Exponential moving average of the trainable weights only.

The shadow weights are buffers of this module, so they live in the LightningModule's
state_dict: every checkpoint carries them, resume restores them, and a later stage (PDAE)
reads them as "the EMA weights". Frozen parameters are never averaged, so a frozen
pre-trained network is stored once, not twice.

Weights loaded by hand into part of the model (``model.encoder.load_state_dict(...)``) would leave
the shadows holding the old weights, and every EMA-scoped call (``encode``, sampling, evaluation)
would silently use them. The EMA therefore watches every submodule's ``load_state_dict``: the
shadows of the weights a load replaced are set to the loaded weights, unless the load is of the
whole model and carries its own shadows (a checkpoint), which then load as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn

from diffrep.errors import ConfigError


def _buffer_name(param_name: str) -> str:
    return param_name.replace(".", "__")


class EMA(nn.Module):
    """Shadow copies of the trainable parameters of ``model`` (not registered as a submodule).

    ``ramp``: the decay after n updates is min(decay, (1 + n) / (10 + n)), as score_sde's EMA
    (``use_num_updates``, the official DRL code) does, so the average follows the weights closely
    for the first few thousand steps. The count is a buffer (checkpointed, resumed) mirrored in a
    Python int, so an update reads nothing back from the device."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, ramp: bool = False) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.ramp, self._updates = decay, ramp, 0
        if ramp:
            self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.swapped_out: dict[str, torch.Tensor] | None = None  # the training weights while EMA ones are in
        self._model = [model]  # a list hides it from nn.Module registration
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        for name, p in self._tracked():
            self.register_buffer(_buffer_name(name), p.detach().clone())
        self._hooks: list[Any] = []
        self._loading: tuple[str, bool] | None = None  # (path of the outermost module being loaded, shadows in it)
        self.watch_loads(model)

    def _tracked(self) -> Iterator[tuple[str, nn.Parameter]]:
        params = dict(self._model[0].named_parameters())
        return ((name, params[name]) for name in self.names)

    def watch_loads(self, model: nn.Module) -> None:
        """Hook every submodule's ``load_state_dict`` so that the shadows follow weights loaded into it
        (module docstring). A hook acts only on the module object it was made for, so a deep copy of
        the model does not write into this EMA."""
        for path, module in model.named_modules():
            if isinstance(module, EMA):
                continue
            self._hooks.append(module.register_load_state_dict_pre_hook(partial(self._load_starts, path, module)))
            self._hooks.append(module.register_load_state_dict_post_hook(partial(self._load_ends, path, module)))

    def unwatch(self) -> None:
        """Remove the load hooks (when this EMA is replaced by a new one)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def _load_starts(self, path: str, watched: nn.Module, module: nn.Module, state_dict: dict, prefix: str,
                     *args: Any) -> None:
        if self._loading is None and module is watched:
            carries_shadows = path == "" and any(k.startswith(prefix + "ema.") for k in state_dict)
            self._loading = (path, carries_shadows)

    def _load_ends(self, path: str, watched: nn.Module, module: nn.Module, incompatible: Any) -> None:
        if self._loading is None or self._loading[0] != path or module is not watched:
            return
        carries_shadows, self._loading = self._loading[1], None
        if not carries_shadows:
            self.sync(path)

    @torch.no_grad()
    def sync(self, path: str = "") -> None:
        """Set the shadows of the weights under ``path`` (all for "") to the weights themselves."""
        for name, p in self._tracked():
            if not path or name.startswith(path + "."):
                self.shadow(name).copy_(p.detach())

    def shadow(self, name: str) -> torch.Tensor:
        return getattr(self, _buffer_name(name))

    def current_decay(self) -> float:
        """The decay the next update uses (with ``ramp``, after counting it)."""
        if not self.ramp:
            return self.decay
        n = self._updates + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self) -> None:
        """shadow <- decay * shadow + (1 - decay) * weight."""
        decay = self.current_decay()
        if self.ramp:
            self._updates += 1
            self.num_updates.add_(1)
        pairs = [(self.shadow(name), p.detach()) for name, p in self._tracked()]
        if pairs:
            shadows, weights = zip(*pairs, strict=True)
            torch._foreach_lerp_(list(shadows), list(weights), 1.0 - decay)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.ramp:  # one read at load time, none per step
            self._updates = int(self.num_updates)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Put the EMA weights into the model for good (a frozen later stage uses only them)."""
        for name, p in self._tracked():
            p.copy_(self.shadow(name))

    @contextmanager
    def average_parameters(self) -> Iterator[None]:
        """Temporarily put the EMA weights into the model (for evaluation and sampling)."""
        backup = {}
        with torch.no_grad():
            for name, p in self._tracked():
                backup[name] = p.detach().clone()
                p.copy_(self.shadow(name))
        self.swapped_out = backup
        try:
            yield
        finally:
            self.swapped_out = None
            with torch.no_grad():
                for name, p in self._tracked():
                    p.copy_(backup[name])
