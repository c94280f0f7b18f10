"""The model summary every fit prints: Lightning's table of modules and parameter counts, without
what it cannot measure on a diffrep method."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

log = logging.getLogger("lightning.pytorch.callbacks.model_summary")


class ParameterSummary(ModelSummary):
    """Lightning's ``ModelSummary`` counts FLOPs only by running ``example_input_array``, which no
    diffrep method has (a denoiser takes (x_t, t, z), not one array), so its FLOPs column and total
    read 0 for every module; and it warns that ``bf16-mixed`` is a precision it does not know, though
    mixed precision keeps fp32 weights, the size it then assumes. This summary leaves out the FLOPs
    when none were counted and that warning; the rest is Lightning's table."""

    def _summary(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Precision .* is not supported by the model summary")
            return super()._summary(trainer, pl_module)

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            ModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                   total_training_modes, total_flops, **summarize_kwargs)
            return
        columns = [column for column in summary_data if column[0] != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                      total_flops, *columns)
        log.info("\n" + "\n".join(line for line in table.splitlines() if not line.endswith("Total Flops")))
