"""``diffrep predict``: write every test image's code and label to one file for downstream use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from diffrep.distributed import rank_and_world


def default_codes_path(trainer: L.Trainer) -> Path:
    """``<checkpoint>.codes.npz`` beside the checkpoint, else ``codes.npz`` in the run folder."""
    if trainer.ckpt_path:
        ckpt = Path(trainer.ckpt_path)
        return ckpt.with_name(ckpt.stem + ".codes.npz")
    return Path(trainer.default_root_dir) / "codes.npz"


class CodeWriter(BasePredictionWriter):
    """Gathers the ``{"codes", "labels"}`` of ``predict_step`` from every rank, restores data
    set order (dropping the duplicates a distributed sampler pads with) and writes ``output``:
    ``.npz`` (numpy arrays ``codes``, ``labels``) or ``.pt`` (a dict of tensors)."""

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output = output
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any,
                           batch_indices: Any) -> None:
        if predictions and isinstance(predictions[0], list):  # several predict loaders: use the first
            predictions = predictions[0]
        while batch_indices and batch_indices[0] and isinstance(batch_indices[0][0], list):  # per loader
            batch_indices = batch_indices[0]
        local = {
            "codes": torch.cat([p["codes"] for p in predictions]) if predictions else torch.empty(0),
            "labels": torch.cat([p["labels"] for p in predictions])
            if predictions
            else torch.empty(0, dtype=torch.long),
            "index": torch.tensor([i for batch in batch_indices for i in batch], dtype=torch.long),
        }
        _, world = rank_and_world()
        parts = [local]
        if world > 1:
            parts = [None] * world
            torch.distributed.all_gather_object(parts, local)
        if not trainer.is_global_zero:
            return
        merged = {k: torch.cat([p[k] for p in parts if len(p["index"])]) for k in local}
        _, keep = np.unique(merged["index"].numpy(), return_index=True)
        codes, labels = merged["codes"][keep], merged["labels"][keep]
        self.path = Path(self.output) if self.output else default_codes_path(trainer)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".pt":
            torch.save({"codes": codes, "labels": labels}, self.path)
        else:
            np.savez(self.path, codes=codes.numpy(), labels=labels.numpy())
        print(f"diffrep: wrote {len(codes)} codes of dimension {codes.shape[1]} to {self.path}")
