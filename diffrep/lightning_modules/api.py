"""Pieces of the public evaluation API that diffusion methods and the baselines share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from diffrep.errors import ConfigError, DiffrepError


class UnsupportedOperation(RuntimeError):
    """A method was asked for something it does not have (e.g. ``encode`` on a plain DPM)."""


class NonFiniteLossError(DiffrepError, RuntimeError):
    """Raised when a training loss or gradient is NaN or infinite; the message names the fix."""


@contextmanager
def evaluating(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for a read of a module (codes, features); its previous mode is
    restored afterwards, also when the read fails."""
    was_training = module.training
    module.train(False)
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def uses_gradient_scaler(precision: Any) -> bool:
    """Whether a trainer precision is fp16 mixed precision, whose gradient scaler scales the gradients
    (and skips non-finite steps itself); bf16 has no scaler."""
    precision = str(precision)
    return "16-mixed" in precision and "bf16" not in precision


def check_state_shapes(module: torch.nn.Module, checkpoint: dict[str, Any]) -> None:
    """A checkpoint trained with other settings (latent size, channels, image size) would fail
    in ``load_state_dict`` with a long size-mismatch dump; say what differs and how to fix it."""
    from diffrep.checkpoints import CheckpointError

    saved = checkpoint.get("state_dict", {})
    own = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in saved.items()
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        shown = "; ".join(mismatched[:3]) + (f" (and {len(mismatched) - 3} more)" if len(mismatched) > 3 else "")
        raise CheckpointError(
            f"the checkpoint was trained with other model settings ({shown}). Use the config it was trained "
            "with (saved as config.yaml in its run folder), e.g. the same latent_dim, channels and image size"
        )


def check_data_shape(model: Any, datamodule: Any) -> None:
    """Refuse data of another shape before any step runs (a pre-trained DPM fixes the shape)."""
    data_shape = getattr(datamodule, "image_shape", None)
    if data_shape is not None and tuple(data_shape) != tuple(model.image_shape):
        c, s = model.image_shape[0], model.image_shape[-1]
        raise ConfigError(
            f"{type(model).__name__} takes {c}x{s}x{s} images but the data gives "
            f"{'x'.join(map(str, data_shape))}; set --data.init_args.image_size {s} and use {c}-channel "
            "data, or a model (pre-trained DPM) built for this data"
        )


def codes_and_labels(model: Any, batch: Any) -> dict[str, Tensor]:
    """``predict_step`` of every method: the code and label (-1 if none) of each image."""
    images = batch[0] if isinstance(batch, (list, tuple)) else batch
    labels = batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else torch.full((len(images),), -1)
    return {"codes": model.encode(images).float().cpu(), "labels": labels.cpu()}
