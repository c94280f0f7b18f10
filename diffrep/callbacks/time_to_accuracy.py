"""Representation quality against training wall-clock: the question a user with one CPU hour asks.

``TimeToAccuracy`` keeps a training clock (wall time since training started, minus the time spent
in validation and in its own evaluations, plus ``offset_minutes`` for work done before this run,
such as the DPM that PDAE or the DPM features start from). When the clock passes each of
``at_minutes`` it encodes the first ``max_train`` training images (no flips) and ``max_eval``
images of every split in ``splits`` and records:

- ``linear``: the full-label logistic-regression probe (``diffrep.evaluation.probes``);
- ``semi_<k>_<method>``: k labels per class, mean over ``seeds`` (``diffrep.evaluation.semi_supervised``).

The codes are the model's ``encode``; for a DPM in training, ``dpm_features: {layer, t}`` reads its
pooled block activation instead (``DPMFeatureEncoder``, EMA weights): the DPM-features curve.

Each point is appended to ``<run>/time_to_accuracy.jsonl`` (one JSON object per line), logged as
``tta/<split>/<metric>`` and kept in ``points``. With ``budget_minutes`` the run stops once the
clock passes the budget (after a last evaluation), so "60 CPU minutes" means 60 minutes of
training, evaluation excluded. Settings are chosen on ``val``; ``test`` is the one reported.

``reconstruction: {num_images, num_steps, split, fid_weights, inversion_steps}`` adds, at each point,
what the code gives back as an image (PDAE's and Diff-AE's other half): ``<split>/recon_mse`` and
``<split>/recon_ssim`` of the first ``num_images`` images (default 500 of ``test``) decoded with
``num_steps`` DDIM steps (default 25) from their own inverted x_T, pixels in [0, 1], and with
``fid_weights`` (the ``diffrep-classifier`` extractor file) ``<split>/rfid`` of those same decodings
against their originals. Nothing is chosen on these numbers; a model that cannot reconstruct (the
DPM features) has none.

``step_minutes``: the clock counts training steps x this many minutes instead of wall time. Set it to
what one step takes with the machine to itself (measured beforehand) when other jobs share the
machine: the curve is then the one the run would have had alone, and no other job can shorten it.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from diffrep import rng
from diffrep.errors import ConfigError, MissingFileError
from diffrep.evaluation.features import encode_split
from diffrep.evaluation.fid import CLASSIFIER, frechet_distance
from diffrep.evaluation.probes import linear_probe
from diffrep.evaluation.reconstruction import decoded_with_errors
from diffrep.evaluation.semi_supervised import semi_supervised_accuracy
from diffrep.lightning_modules.backbone import UnsupportedOperation

DEFAULT_MARKS = (1, 2, 4, 8, 15, 30, 45, 60)  # training minutes at which a point is taken
RECONSTRUCTION_DEFAULTS = {"num_images": 500, "num_steps": 25, "split": "test", "fid_weights": None,
                           "inversion_steps": None}
IMAGE_METRICS = ("recon_mse", "recon_ssim", "rfid")  # printed as they are, not as percentages


def is_image_metric(key: str) -> bool:
    """``<split>/recon_mse`` and the like: shown as they are, where accuracies are shown in %."""
    return key.split("/")[-1] in IMAGE_METRICS


class TimeToAccuracy(L.Callback):
    def __init__(
        self,
        at_minutes: Sequence[float] = DEFAULT_MARKS,
        budget_minutes: float | None = None,
        offset_minutes: float = 0.0,
        splits: Sequence[str] = ("val", "test"),
        max_train: int = 10000,
        max_eval: int = 5000,
        labels_per_class: int = 10,
        seeds: Sequence[int] = (0, 1, 2),
        methods: Sequence[str] = ("supervised", "label_spreading"),
        seed: int = 0,
        dpm_features: dict | None = None,
        step_minutes: float | None = None,
        reconstruction: dict | None = None,
    ) -> None:
        if sorted(at_minutes) != list(at_minutes) or not at_minutes:
            raise ConfigError(f"at_minutes must be a non-empty increasing list, got {list(at_minutes)}")
        if budget_minutes is not None and budget_minutes <= offset_minutes:  # (a resume may pass it)
            raise ConfigError(f"budget_minutes ({budget_minutes}) must exceed offset_minutes ({offset_minutes}): "
                             "the work before this run already spent the budget")
        self.at_minutes, self.budget_minutes, self.offset_minutes = list(at_minutes), budget_minutes, offset_minutes
        self.splits, self.max_train, self.max_eval = list(splits), max_train, max_eval
        self.labels_per_class, self.seeds, self.methods = labels_per_class, list(seeds), list(methods)
        self.seed = seed
        if dpm_features is not None and set(dpm_features) - {"layer", "t"}:
            raise ConfigError(f"dpm_features takes layer and t, got {sorted(dpm_features)}")
        self.dpm_features = dpm_features
        if step_minutes is not None and step_minutes <= 0:
            raise ConfigError(f"step_minutes must be positive (minutes per training step), got {step_minutes}")
        self.step_minutes, self._first_step, self._step = step_minutes, 0, 0
        self.reconstruction = self._reconstruction_settings(reconstruction)
        self._warned_no_decoder = False
        self.points: list[dict[str, Any]] = []
        self._excluded = 0.0
        self._started: float | None = None
        self._paused_at: float | None = None
        self._next = 0

    @staticmethod
    def _reconstruction_settings(given: dict | None) -> dict | None:
        if given is None:
            return None
        unknown = set(given) - set(RECONSTRUCTION_DEFAULTS)
        if unknown:
            raise ConfigError(f"reconstruction takes {sorted(RECONSTRUCTION_DEFAULTS)}, got unknown {sorted(unknown)}")
        settings = {**RECONSTRUCTION_DEFAULTS, **given}
        weights = settings["fid_weights"]
        if weights is not None and not Path(weights).is_file():
            raise MissingFileError(f"reconstruction.fid_weights {weights} not found; train it with "
                                   f"`python -m diffrep.evaluation.extractor --out {weights}` or leave fid_weights out")
        return settings

    # ------------------------------------------------------------------ the clock
    def clock_minutes(self) -> float:
        """Training minutes so far, the offset included (evaluation and validation excluded)."""
        if self._started is None:
            return self.offset_minutes
        if self.step_minutes is not None:
            return self.offset_minutes + (self._step - self._first_step) * self.step_minutes
        now = self._paused_at if self._paused_at is not None else time.perf_counter()
        return self.offset_minutes + (now - self._started - self._excluded) / 60

    def _pause(self) -> None:
        self._paused_at = time.perf_counter()

    def _resume(self) -> None:
        if self._paused_at is not None:
            self._excluded += time.perf_counter() - self._paused_at
            self._paused_at = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started, self._excluded, self._paused_at = time.perf_counter(), 0.0, None
        self._first_step = self._step = trainer.global_step
        if self.budget_minutes is not None and self.offset_minutes >= self.budget_minutes:
            trainer.should_stop = True  # resumed after the budget was spent
        self._skip_marks_up_to(self.offset_minutes)  # marks inside the offset belong to the earlier stage's curve

    def _skip_marks_up_to(self, minutes: float) -> None:
        """Advance to the first mark after ``minutes`` (one point serves every mark it passed)."""
        while self._next < len(self.at_minutes) and self.at_minutes[self._next] <= minutes:
            self._next += 1

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._started is not None and not trainer.sanity_checking:
            self._pause()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._resume()

    # ------------------------------------------------------------------ when to evaluate
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self._step = trainer.global_step
        minutes = self.clock_minutes()
        over_budget = self.budget_minutes is not None and minutes >= self.budget_minutes
        due = self._next < len(self.at_minutes) and minutes >= self.at_minutes[self._next]
        # rank 0's clock decides for all ranks: the evaluation gathers codes from every rank
        due, over_budget = trainer.strategy.broadcast((due, over_budget), src=0)
        if due or over_budget:
            self._skip_marks_up_to(minutes)
            self.evaluate(trainer, pl_module)
        if over_budget:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The last point (before the final checkpoint is written, so a resume keeps it)."""
        if not self.points or self.points[-1]["step"] != trainer.global_step:
            self.evaluate(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A representation that trains nothing (pixels, PCA): one point, at ``offset_minutes``."""
        self.evaluate(trainer, pl_module)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """The clock and the points so far, so a resumed run continues its curve."""
        return {"minutes": self.clock_minutes(), "points": self.points, "next": self._next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.offset_minutes, self.points, self._next = state["minutes"], list(state["points"]), state["next"]

    # ------------------------------------------------------------------ the evaluation
    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        minutes = self.clock_minutes()
        self._pause()
        try:
            with rng.forked(pl_module.device):
                torch.manual_seed(self.seed)
                point = {"minutes": minutes, "step": trainer.global_step, **self.scores(trainer, pl_module)}
        finally:
            self._resume()
        self.points.append(point)
        if trainer.is_global_zero:
            self._write(trainer, point)
        return point

    def encoder(self, pl_module: L.LightningModule):
        """What codes the images: the model, or the DPM features of the DPM being trained."""
        if self.dpm_features is None:
            return pl_module
        if not hasattr(pl_module, "feature_encoder"):
            raise ConfigError(f"dpm_features reads a DPM's U-Net; {type(pl_module).__name__} is not a DPM")
        return pl_module.feature_encoder(self.dpm_features.get("layer", "middle_block"), self.dpm_features.get("t", 50))

    def scores(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        datamodule = trainer.datamodule
        pl_module = self.encoder(pl_module)
        train = encode_split(pl_module, datamodule.evaluation_split("train"), self.max_train)
        out: dict[str, float] = {}
        for split in self.splits:
            held_out = encode_split(pl_module, datamodule.evaluation_split(split), self.max_eval)
            if not trainer.is_global_zero:
                continue
            out[f"{split}/linear"] = linear_probe(*train, *held_out)["accuracy"]
            k = self.labels_per_class
            semi = semi_supervised_accuracy(*train, *held_out, (k,), self.seeds, self.methods)
            for method, per_k in semi.items():
                out[f"{split}/semi_{k}_{method}"] = per_k[k]["mean"]
        if self.reconstruction is not None and self.dpm_features is None:
            out.update(self.reconstruction_scores(trainer, pl_module))
        return out

    def reconstruction_scores(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Pixel errors and rFID of one set of decodings from the inverted x_T (``reconstruction``)."""
        settings, split = self.reconstruction, self.reconstruction["split"]
        try:
            decoded = decoded_with_errors(pl_module, trainer.datamodule.evaluation_split(split),
                                          settings["num_images"], settings["num_steps"], batch_size=100,
                                          inversion_steps=settings["inversion_steps"], keep_images=True)
        except UnsupportedOperation as err:  # SimCLR has a code and nothing to decode it with
            if not self._warned_no_decoder:
                warnings.warn(f"TimeToAccuracy: no reconstruction scores: {err}", stacklevel=1)
                self._warned_no_decoder = True
            return {}
        if not trainer.is_global_zero:
            return {}
        out = {f"{split}/recon_mse": decoded["inverted_mse"].mean().item(),
               f"{split}/recon_ssim": decoded["inverted_ssim"].mean().item()}
        if settings["fid_weights"] is not None:
            out[f"{split}/rfid"] = frechet_distance(decoded["inverted"], decoded["originals"], CLASSIFIER,
                                                    settings["fid_weights"], device=pl_module.device)
        return out

    def _write(self, trainer: L.Trainer, point: dict[str, Any]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics({f"tta/{k}": v for k, v in point.items() if k != "step"}, step=trainer.global_step)
        path = Path(trainer.default_root_dir) / "time_to_accuracy.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps(point) + "\n")
        summary = ", ".join(f"{k} {v:.4g}" if is_image_metric(k) else f"{k} {100 * v:.1f}"
                            for k, v in point.items() if k not in ("minutes", "step"))
        print(f"diffrep: time to accuracy at {point['minutes']:.1f} min (step {point['step']}): {summary}", flush=True)
