"""Representations read straight from a DPM (DDAE, Xiang et al. ICCV 2023; FutureXiang/ddae).

Noise x0 to x_t at a chosen timestep, run the denoiser, and take the globally average-pooled
activation of a chosen block as the code. Which block and which t matter a great deal (DDAE:
95.9% linear on CIFAR-10 at the best pair), so ``sweep`` scores every (layer, t) pair with a
logistic regression fitted on training codes and scored on the validation split — never on the
test split — and the best pair is the one the test suite then evaluates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from diffrep.diffusion.process import network_input, q_sample
from diffrep.diffusion.schedule import NoiseSchedule
from diffrep.errors import ConfigError
from diffrep.evaluation.linear import Standardiser, fit_logistic_regression


def default_layers(unet: nn.Module) -> list[str]:
    """Every input block, the middle block and every output block, in forward order."""
    return ([f"input_blocks.{i}" for i in range(len(unet.input_blocks))] + ["middle_block"]
            + [f"output_blocks.{i}" for i in range(len(unet.output_blocks))])


class _Captured(Exception):
    """Raised by the last hook to stop the forward pass once every wanted layer has run."""


def pooled_activations(unet: nn.Module, schedule: NoiseSchedule, x0: Tensor, t: int, layers: Sequence[str],
                       generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """{layer: (B, C) spatial mean of its output} for x_t = q_sample(x0, t, eps), eps drawn from
    ``generator``. The forward pass stops after the last of ``layers`` in forward order."""
    order = {name: i for i, name in enumerate(default_layers(unet))}
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise ConfigError(f"unknown U-Net layers {unknown}; choose from {list(order)}")
    last = max(layers, key=order.__getitem__)
    found: dict[str, Tensor] = {}

    def hook_for(name: str) -> Callable:
        def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
            found[name] = output.float().mean(dim=(2, 3))
            if name == last:
                raise _Captured

        return hook

    handles = [unet.get_submodule(name).register_forward_hook(hook_for(name)) for name in layers]
    steps = torch.full((len(x0),), int(t), device=x0.device, dtype=torch.long)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device if generator is None else generator.device)
    x_t = q_sample(schedule, x0, steps, eps.to(x0))
    try:
        unet(network_input(schedule, x_t, steps), schedule.model_time(steps))
    except _Captured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return {name: found[name] for name in layers}


class DPMFeatureEncoder:
    """A DPM's pooled block activation as an ``encode``-able code (what the probes call), read from
    a DPM while it trains: the time-to-accuracy curve of the DPM features. ``inference`` is the
    training module's context (eval mode, EMA weights, no autograd); the noise is seeded per call."""

    def __init__(self, unet: nn.Module, schedule: NoiseSchedule, layer: str, t: int, inference: Callable,
                 noise_seed: int = 0) -> None:
        if layer not in default_layers(unet):
            raise ConfigError(f"unknown U-Net layer {layer!r}; choose from {default_layers(unet)}")
        self.unet, self.schedule, self.layer, self.t = unet, schedule, layer, int(t)
        self.inference, self.noise_seed = inference, noise_seed

    def model_device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def encode(self, x0: Tensor) -> Tensor:
        generator = torch.Generator(x0.device).manual_seed(self.noise_seed)
        with self.inference():
            return pooled_activations(self.unet, self.schedule, x0, self.t, [self.layer], generator)[self.layer]


def validation_accuracy(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, l2: float = 1e-3) -> float:
    """Logistic regression (fixed L2) on standardised training codes, accuracy on the validation codes."""
    scale = Standardiser.fit(train_x)
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    clf = fit_logistic_regression(scale(train_x), train_y, num_classes, l2=l2, max_iter=100)
    return (clf.predict(scale(val_x)) == val_y).float().mean().item()


def sweep(codes: dict[int, tuple[dict[str, Tensor], Tensor, dict[str, Tensor], Tensor]], layers: Sequence[str],
          times: Sequence[int]) -> tuple[Tensor, tuple[str, int]]:
    """(validation accuracy of shape (len(layers), len(times)), the best (layer, t)) from ``codes``:
    {t: (training codes by layer, training labels, validation codes by layer, validation labels)}."""
    grid = torch.zeros(len(layers), len(times))
    for j, t in enumerate(times):
        train, train_y, val, val_y = codes[t]
        for i, layer in enumerate(layers):
            grid[i, j] = validation_accuracy(train[layer], train_y, val[layer], val_y)
    i, j = divmod(int(grid.argmax()), len(times))
    return grid, (layers[i], int(times[j]))


def heat_map(grid: Tensor, layers: Sequence[str], times: Sequence[int], best: tuple[str, int], path) -> None:
    """Validation accuracy over layers x t as a PNG (the best pair outlined)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(1.2 + 0.7 * len(times), 1.0 + 0.32 * len(layers)), dpi=110)  # no pyplot state
    ax = fig.subplots()
    image = ax.imshow(100 * grid.numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(times)), [str(t) for t in times])
    ax.set_yticks(range(len(layers)), list(layers), fontsize=7)
    for i in range(len(layers)):
        for j in range(len(times)):
            ax.text(j, i, f"{100 * grid[i, j]:.1f}", ha="center", va="center", fontsize=6, color="white")
    i, j = list(layers).index(best[0]), list(times).index(best[1])
    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set(xlabel="timestep t", title="DPM features: validation linear-probe accuracy (%)")
    fig.colorbar(image, ax=ax)
    fig.savefig(path, bbox_inches="tight")
