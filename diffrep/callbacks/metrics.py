"""Image-quality metrics during fit and test: reconstruction MSE/PSNR/SSIM and FID.

Work is split over DDP ranks and gathered (``diffrep.evaluation.distributed``); rank 0 computes
the metric once and logs it. A method that lacks an operation (a plain DPM has no encoder,
PDAE alone cannot sample) is skipped for that metric with a one-time warning, not an error.
"""

from __future__ import annotations

import warnings

import lightning as L

from diffrep.callbacks.base import EvaluationCallback
from diffrep.errors import MissingFileError
from diffrep.evaluation.distributed import generate_items, map_items
from diffrep.evaluation.fid import CLASSIFIER, frechet_distance, to_uint8_rgb
from diffrep.evaluation.reconstruction import reconstruction_metrics
from diffrep.lightning_modules.backbone import UnsupportedOperation


class ReconstructionMetrics(EvaluationCallback):
    """``recon/{inverted,random}_{mse,psnr,ssim}`` on the first ``num_images`` held-out images
    (validation during fit, test under ``diffrep test``)."""

    def __init__(self, every_n_epochs: int = 1, num_images: int = 256, num_steps: int = 50, batch_size: int = 64,
                 seed: int = 0, inversion_steps: int | None = None, timestep_grid: str | None = None) -> None:
        super().__init__(every_n_epochs, seed, timestep_grid=timestep_grid)
        self.inversion_steps = inversion_steps
        self.num_images, self.num_steps, self.batch_size = num_images, num_steps, batch_size

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict[str, float]:
        metrics = reconstruction_metrics(pl_module, self.held_out(trainer, stage), self.num_images,
                                         self.num_steps, self.batch_size, self.seed, self.inversion_steps)
        return {f"recon/{k}": v for k, v in metrics.items()}


class FID(EvaluationCallback):
    """FID of samples (``fid/samples``) and of reconstructions (``fid/reconstructions``, the
    autoencoding FID of Diff-AE) against ``num_images`` held-out images (validation during fit, test
    under ``diffrep test``).

    ``extractor`` is ``diffrep-classifier`` (a small classifier trained by
    ``python -m diffrep.evaluation.extractor``; the default for 32 px grey data) or
    ``inception-v3-compat``; ``weights_path`` is a local file either way: nothing downloads.
    """

    def __init__(self, every_n_epochs: int = 1, num_images: int = 1000, num_steps: int = 50,
                 extractor: str = CLASSIFIER, weights_path: str = "runs/fid/fashion_mnist_classifier.pt",
                 samples: bool = True, reconstructions: bool = True, batch_size: int = 100, seed: int = 0,
                 timestep_grid: str | None = None) -> None:
        super().__init__(every_n_epochs, seed, timestep_grid=timestep_grid)
        self.num_images, self.num_steps, self.batch_size = num_images, num_steps, batch_size
        self.extractor, self.weights_path = extractor, weights_path
        self.samples, self.reconstructions = samples, reconstructions

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Refuse a missing extractor before any training step, not after the first epoch."""
        from pathlib import Path

        if not Path(self.weights_path).is_file():
            hint = (f"python -m diffrep.evaluation.extractor --out {self.weights_path}" if self.extractor == CLASSIFIER
                    else "put the InceptionV3 weights file there")
            raise MissingFileError(f"FID feature extractor weights {self.weights_path} not found; run `{hint}` "
                                    "or remove the FID callback")

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict[str, float]:
        device = pl_module.device
        test = self.held_out(trainer, stage)
        images = {"reference": map_items(lambda x, y: {"images": to_uint8_rgb(x)}, test, self.num_images,
                                         self.batch_size, device)["images"]}
        n = len(images["reference"])
        if self.samples:
            try:
                images["samples"] = generate_items(
                    lambda k, g: to_uint8_rgb(pl_module.sample(k, num_steps=self.num_steps, generator=g)),
                    n, self.batch_size, device, self.seed)
            except UnsupportedOperation as err:
                warnings.warn(f"FID of samples skipped: {err}", stacklevel=1)
        if self.reconstructions:
            try:
                images["reconstructions"] = map_items(
                    lambda x, y: {"images": to_uint8_rgb(pl_module.reconstruct(x, num_steps=self.num_steps))},
                    test, n, self.batch_size, device)["images"]
            except UnsupportedOperation as err:
                warnings.warn(f"FID of reconstructions skipped: {err}", stacklevel=1)
        if not trainer.is_global_zero:
            return {}
        reference = images.pop("reference")
        return {f"fid/{name}": frechet_distance(generated, reference, self.extractor, self.weights_path,
                                                self.batch_size, device)
                for name, generated in images.items()}


__all__ = ["FID", "ReconstructionMetrics"]
