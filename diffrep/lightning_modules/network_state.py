"""How a method holds its networks: frozen sub-networks that stay frozen (no gradients, eval mode through
Lightning's ``.train()``, said once in place of Lightning's eval-mode warning) and the GPU speed options
(channels_last, torch.compile). ``DiffusionBackboneMixin`` composes it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from diffrep.internals import quiet_the_eval_mode_warning_of
from diffrep.lightning_modules.settings import FastPaths


class NetworkStateMixin:
    """Frozen modules and fast paths of a LightningModule; mix in before ``lightning.LightningModule``."""

    channels_last: bool = False

    def freeze(self, module: nn.Module, what: str | None = None) -> None:
        """Frozen means frozen: no grads, eval mode even after Lightning calls ``.train()``.
        ``what`` names the module in the one log line that says so (default: its class)."""
        module.requires_grad_(False)
        module.eval()
        self._frozen = [*getattr(self, "_frozen", []), module]
        self._frozen_names = [*getattr(self, "_frozen_names", []), what or type(module).__name__]

    def train(self, mode: bool = True) -> Any:  # type: ignore[override]
        super().train(mode)  # type: ignore[misc]
        for module in getattr(self, "_frozen", []):
            module.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]  # type: ignore[attr-defined]

    def on_fit_start(self) -> None:
        """Frozen modules are in eval mode on purpose: say so once, in place of Lightning's
        "Found N module(s) in eval mode" warning, which is silenced only when every module in
        eval mode lies inside a module this method froze (until training starts)."""
        frozen = {id(m) for module in getattr(self, "_frozen", []) for m in module.modules()}
        in_eval = [m for m in self.modules() if not m.training]  # type: ignore[attr-defined]
        if not in_eval or any(id(m) not in frozen for m in in_eval):
            return
        from lightning.pytorch.utilities import rank_zero_info

        quiet_the_eval_mode_warning_of(self.trainer.fit_loop)  # type: ignore[attr-defined]
        names = ", ".join(dict.fromkeys(self._frozen_names))
        rank_zero_info(f"diffrep: the frozen {names} ({len(in_eval)} modules) stays in eval mode while "
                       f"{type(self).__name__} trains, on purpose (no dropout, no gradients)")

    def setup_fast_paths(self, fast: FastPaths) -> None:
        """GPU speed options on ``fast_path_network()``: NHWC memory layout and in-place ``torch.compile``
        (keys unchanged); call it once that network is built.

        ``compile`` is False, True (the default mode) or a torch.compile mode name; on a GPU at
        small batches "reduce-overhead" (CUDA graphs) removes the kernel-launch cost that
        dominates a 32x32 U-Net step.
        """
        self.channels_last = fast.channels_last
        net = self.fast_path_network()
        if fast.channels_last:
            net.to(memory_format=torch.channels_last)
        if fast.compile:
            net.compile(mode=None if fast.compile is True else fast.compile)

    def fast_path_network(self) -> nn.Module:
        """The network the speed options act on: the denoiser (PDAE's: its shift decoder)."""
        return self.unet  # type: ignore[attr-defined]

    def to_memory_format(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
