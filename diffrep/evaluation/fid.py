"""FID through torch-fidelity, with the standard InceptionV3 or a registered small classifier.

- ``extractor="inception-v3-compat"``: torch-fidelity's InceptionV3 (2048-d pool features), the
  number papers report. Its weights must be a local file (``weights_path``): nothing downloads.
- ``extractor="diffrep-classifier"``: the penultimate features of ``SmallClassifier``
  (``diffrep.evaluation.extractor``), for grey 32 px data; trained once by a documented command.

Both image sets are handed to torch-fidelity as in-memory uint8 tensors (no PNGs, no cache), so
the reference split is read once from the data set and never written to disk.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffrep.errors import ConfigError, MissingFileError
from diffrep.evaluation.extractor import load_classifier, uint8_to_model_input

CLASSIFIER = "diffrep-classifier"
INCEPTION = "inception-v3-compat"


def to_uint8_rgb(images: Tensor) -> Tensor:
    """Images in [-1, 1] (N, 1 or 3, H, W) -> uint8 (N, 3, H, W), torch-fidelity's input."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


class _Uint8Images(Dataset):
    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]


def _register_classifier() -> None:
    import torch_fidelity
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if CLASSIFIER in FEATURE_EXTRACTORS_REGISTRY:
        return

    class ClassifierFeatures(FeatureExtractorBase):
        """torch-fidelity's view of ``SmallClassifier``: uint8 RGB in, 'features' out."""

        def __init__(
            self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs
        ) -> None:
            super().__init__(name, features_list)
            if feature_extractor_weights_path is None:
                raise MissingFileError(
                    "the diffrep-classifier FID extractor needs weights_path (see diffrep.evaluation.extractor)"
                )
            self.classifier = load_classifier(feature_extractor_weights_path)

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return ("features",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return "features"

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> Tensor:
            return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

        def forward(self, images: Tensor) -> tuple[Tensor]:
            x = uint8_to_model_input(images, self.classifier.config["in_channels"])
            return (self.classifier.features(x).double(),)

    torch_fidelity.register_feature_extractor(CLASSIFIER, ClassifierFeatures)


def frechet_distance(
    generated: Tensor,
    reference: Tensor,
    extractor: str = CLASSIFIER,
    weights_path: str | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> float:
    """FID between two sets of images in [-1, 1] (or uint8 RGB), computed by torch-fidelity."""
    import torch_fidelity

    if extractor == CLASSIFIER:
        _register_classifier()
        layer = "features"
    elif extractor == INCEPTION:
        layer = "2048"
    else:
        raise ConfigError(f"unknown FID extractor {extractor!r}; use {CLASSIFIER!r} or {INCEPTION!r}")
    if weights_path is None or not Path(weights_path).is_file():
        hint = (
            "python -m diffrep.evaluation.extractor --out PATH"
            if extractor == CLASSIFIER
            else "download pt_inception-2015-12-05 weights once and point weights_path at the file"
        )
        raise MissingFileError(f"FID extractor weights {weights_path!r} not found; {hint}")
    if min(len(generated), len(reference)) < 2:
        raise ConfigError("FID needs at least 2 images in each set")
    sets = [x if x.dtype == torch.uint8 else to_uint8_rgb(x) for x in (generated, reference)]
    metrics = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(sets[0].cpu()),
        input2=_Uint8Images(sets[1].cpu()),
        fid=True,
        feature_extractor=extractor,
        feature_layer_fid=layer,
        feature_extractor_weights_path=str(weights_path),
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    return float(metrics["frechet_inception_distance"])
