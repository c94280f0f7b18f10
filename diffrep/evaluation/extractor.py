"""A small image classifier whose penultimate features replace InceptionV3 for FID on
grey-scale 28-32 px data (Fashion-MNIST, MNIST), where Inception features are a poor fit and
its weights may not be on the machine.

Train and save it once (about five minutes on 2 CPU cores; 89.8% Fashion-MNIST test accuracy):

    python -m diffrep.evaluation.extractor --data fashion_mnist --out runs/fid/fashion_mnist_classifier.pt

then name the file as ``weights_path`` of the ``FID`` callback (extractor ``diffrep-classifier``).
The file holds the weights and the architecture, so FIDs computed with it compare across runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffrep.errors import ConfigError, MissingFileError


class SmallClassifier(nn.Module):
    """Three conv stages (32x32 -> 4x4), then a ``feature_dim`` layer and the class logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, feature_dim: int = 128) -> None:
        super().__init__()
        self.config = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "width": width,
            "feature_dim": feature_dim,
        }
        layers: list[nn.Module] = []
        c = in_channels
        for mult in (1, 2, 4):
            layers += [
                nn.Conv2d(c, width * mult, 3, padding=1),
                nn.BatchNorm2d(width * mult),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c = width * mult
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 16, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations of images in [-1, 1] at 32x32."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def save_classifier(model: SmallClassifier, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.config, "state_dict": model.state_dict()}, path)


def load_classifier(path: str | Path) -> SmallClassifier:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"FID feature extractor {path} not found; train it with "
            f"`python -m diffrep.evaluation.extractor --out {path}` or set the FID callback's weights_path"
        )
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = SmallClassifier(**saved["config"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def uint8_to_model_input(images: Tensor, in_channels: int, size: int = 32) -> Tensor:
    """torch-fidelity's uint8 (N, 3, H, W) -> the classifier's [-1, 1] input."""
    x = images.float() / 127.5 - 1
    if in_channels == 1 and x.shape[1] == 3:
        x = x.mean(1, keepdim=True)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def train_classifier(datamodule, epochs: int = 3, lr: float = 2e-3, seed: int = 0) -> tuple[SmallClassifier, float]:
    """Fit on the training split; return the model and its test accuracy."""
    torch.manual_seed(seed)
    channels, size, _ = datamodule.image_shape
    if size != 32:
        raise ConfigError("the FID classifier takes 32x32 images; set image_size 32")
    model = SmallClassifier(in_channels=channels, num_classes=int(datamodule.splits["train"].labels.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for x, y in datamodule.train_dataloader():
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in datamodule.test_dataloader():
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return model, correct / total


def main(argv: list[str] | None = None) -> None:
    from diffrep.datamodules import FashionMNISTDataModule, MNISTDataModule

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["fashion_mnist", "mnist"], default="fashion_mnist")
    parser.add_argument("--root", default=None, help="data folder (default: the usual search path)")
    parser.add_argument("--out", default="runs/fid/fashion_mnist_classifier.pt")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    cls = FashionMNISTDataModule if args.data == "fashion_mnist" else MNISTDataModule
    datamodule = cls(root=args.root, image_size=32, batch_size=128, val_size=0)
    model, accuracy = train_classifier(datamodule, epochs=args.epochs)
    save_classifier(model, args.out)
    print(f"saved {args.out}: test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
