"""``DPMFeatures``: a trained DPM's intermediate activations as the representation (DDAE, Xiang
et al. ICCV 2023). The natural baseline for PDAE, which starts from the same frozen DPM.

z = global average pool of block ``layer`` of the U-Net run on x_t, x_t = q_sample(x0, t, eps).
The noise eps is drawn from a generator seeded with ``noise_seed`` at every call, so the code of
an image is the same every time it is computed (within one batch size).

``layer: auto`` / ``t: auto`` choose the pair on the validation split before the first test
batch: codes of ``sweep_train`` training and ``sweep_val`` validation images at every t of
``sweep_times`` and every layer of ``sweep_layers`` (default: all blocks), a fixed-L2 logistic
regression per pair, best validation accuracy wins (``diffrep.evaluation.dpm_features``). The
heat map goes to ``<run>/images/dpm_feature_sweep.png`` and to the loggers, the grid to
``<run>/dpm_feature_sweep.json``; the chosen pair is in the test report.

``dpm_checkpoint``: a diffrep DPM (or PDAE, whose frozen DPM it holds) checkpoint, or an official
PDAE/Diff-AE ``checkpoint.pt`` with its ``config.yml`` (``dpm_config``). Nothing trains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffrep.checkpoints import load_dpm
from diffrep.errors import ConfigError
from diffrep.evaluation.distributed import map_items
from diffrep.evaluation.dpm_features import default_layers, heat_map, pooled_activations, sweep
from diffrep.lightning_modules.baselines import _Baseline


class DPMFeatures(_Baseline):
    def __init__(
        self,
        dpm_checkpoint: str = "runs/dpm/checkpoints/last.ckpt",
        dpm_config: str | None = None,
        layer: str = "auto",
        t: int | str = "auto",
        sweep_layers: list[str] | None = None,
        sweep_times: tuple[int, ...] = (10, 50, 100, 200, 400),
        sweep_train: int = 5000,
        sweep_val: int = 2000,
        noise_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        unet, schedule = load_dpm(dpm_checkpoint, dpm_config)
        self.unet = unet.eval().requires_grad_(False)
        self.schedule = schedule.build()
        if not self.schedule.discrete:
            raise ConfigError(f"DPMFeatures reads a DDPM (discrete schedule); {dpm_checkpoint} uses {schedule.kind!r}")
        cfg = unet.config
        self.image_shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        self.sweep_layers = list(sweep_layers) if sweep_layers else default_layers(unet)
        bad = [name for name in [*self.sweep_layers, *([layer] if layer != "auto" else [])]
               if name not in default_layers(unet)]
        if bad:
            raise ConfigError(f"unknown U-Net layers {bad}; choose from {default_layers(unet)}")
        self.layer, self.t = layer, t if t == "auto" else int(t)
        self.sweep_times, self.sweep_train, self.sweep_val = [int(s) for s in sweep_times], sweep_train, sweep_val
        self.noise_seed = noise_seed

    @property
    def anchor(self) -> Tensor:
        return self.unet.out[-1].weight

    def train(self, mode: bool = True) -> DPMFeatures:
        super().train(mode)
        self.unet.eval()  # frozen: dropout stays off
        return self

    def features(self, x0: Tensor, layers: list[str], t: int) -> dict[str, Tensor]:
        generator = torch.Generator(x0.device).manual_seed(self.noise_seed)
        with torch.no_grad():
            return pooled_activations(self.unet, self.schedule, x0, t, layers, generator)

    def encode(self, x0: Tensor) -> Tensor:
        if self.layer == "auto" or self.t == "auto":
            raise RuntimeError("DPMFeatures has no layer/t yet: run it under `diffrep test` with a datamodule "
                               "(the sweep chooses them), or set --model.init_args.layer and .t")
        return self.features(x0, [self.layer], int(self.t))[self.layer]

    # ------------------------------------------------------------------ the sweep
    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if (self.layer == "auto" or self.t == "auto") and datamodule is not None:
            self.choose_layer_and_time(datamodule)

    def choose_layer_and_time(self, datamodule: Any) -> None:
        datamodule.setup()
        layers = self.sweep_layers if self.layer == "auto" else [self.layer]
        times = self.sweep_times if self.t == "auto" else [int(self.t)]
        device = self.anchor.device
        codes = {}
        for t in times:

            def activations(images: Tensor, labels: Tensor, t: int = t) -> dict[str, Tensor]:
                return {**self.features(images, layers, t), "labels": labels}

            train = map_items(activations, datamodule.evaluation_split("train"), self.sweep_train, 256, device)
            val = map_items(activations, datamodule.evaluation_split("val"), self.sweep_val, 256, device)
            codes[t] = (train, train["labels"], val, val["labels"])
        grid, (self.layer, self.t) = sweep(codes, layers, times)
        self.hparams.update(layer=self.layer, t=self.t)
        self._write_sweep(grid, layers, times)

    def _write_sweep(self, grid: Tensor, layers: list[str], times: list[int]) -> None:
        if not self.trainer.is_global_zero:
            return
        run = Path(self.trainer.default_root_dir)
        (run / "images").mkdir(parents=True, exist_ok=True)
        png = run / "images" / "dpm_feature_sweep.png"
        heat_map(grid, layers, times, (self.layer, self.t), png)
        (run / "dpm_feature_sweep.json").write_text(json.dumps(
            {"layers": layers, "times": times, "val_accuracy": grid.tolist(), "best": [self.layer, self.t]}, indent=2))
        import numpy as np
        from PIL import Image

        image = np.asarray(Image.open(png).convert("RGB"))
        for logger in self.trainer.loggers:
            if hasattr(logger, "log_image"):  # W&B
                logger.log_image(key="dpm_feature_sweep", images=[image])
        print(f"diffrep: DPM features chose layer {self.layer}, t = {self.t} "
              f"(validation accuracy {100 * grid.max():.1f}%); heat map {png}")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """The chosen pair goes into the test report (the layer as its index in forward order)."""
        self.log("test/feature_t", float(self.t))
        self.log("test/feature_layer_index", float(default_layers(self.unet).index(self.layer)))

    def configure_optimizers(self) -> None:
        return None
