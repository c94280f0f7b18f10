"""Fashion-MNIST (Xiao et al. 2017) and MNIST from their IDX files.

Files are looked for, gzipped or not, in ``root``, $DIFFREP_DATA, ./data and
/usr/share/datasets (each also with a ``fashion-mnist``/``mnist`` subfolder); Debian's
``dataset-fashion-mnist`` package installs them in the last. With ``download=True`` and a
network they are fetched from the official addresses into ``root`` (default ./data).
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from diffrep.datamodules.base import DataError, ImageDataModule, search_roots
from diffrep.datamodules.download import download
from diffrep.datamodules.idx import read_idx

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class FashionMNISTDataModule(ImageDataModule):
    """28x28 grey clothing images in 10 classes; padded to 32x32 by default."""

    folder = "fashion-mnist"
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    hint = "install Debian's package: sudo apt-get install dataset-fashion-mnist"
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

    def find(self, stem: str) -> Path | None:
        for base in search_roots(self.root, self.download):
            for folder in (base, base / self.folder):
                for name in (stem + ".gz", stem):
                    if (folder / name).is_file():
                        return folder / name
        return None

    def locate(self, stem: str) -> Path:
        path = self.find(stem)
        if path is not None:
            return path
        if self.download:
            target = Path(self.root or "data") / self.folder / (stem + ".gz")
            return download(self.url + stem + ".gz", target)
        searched = ", ".join(str(p) for p in search_roots(self.root, self.download))
        raise DataError(
            f"{self.folder} file {stem}(.gz) not found in {searched} (or their '{self.folder}' subfolders). "
            f"Fix: {self.hint}, or pass --data.init_args.root DIR, or --data.init_args.download true when online."
        )

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        image_stem, label_stem = _FILES[split]
        images, labels = read_idx(self.locate(image_stem)), read_idx(self.locate(label_stem))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{self.folder} {split}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match"
            )
        return images[:, None], labels


class MNISTDataModule(FashionMNISTDataModule):
    """28x28 handwritten digits (LeCun et al. 1998)."""

    folder = "mnist"
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    hint = "place the four MNIST IDX files in ./data/mnist"
    class_names = tuple(str(d) for d in range(10))

