"""Datamodules: every one yields (image in [-1, 1], label) with train/val/test splits."""

from diffrep.datamodules.base import DataError, ImageDataModule
from diffrep.datamodules.cifar import CIFAR10DataModule
from diffrep.datamodules.digits import DigitsDataModule
from diffrep.datamodules.folder import ImageFolderDataModule
from diffrep.datamodules.laplacenet import LaplaceNetDataModule
from diffrep.datamodules.lmdb import LMDBImageDataModule
from diffrep.datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from diffrep.datamodules.streaming import StreamingImageDataModule
from diffrep.datamodules.synthetic import SyntheticImageDataModule

__all__ = [
    "CIFAR10DataModule",
    "DataError",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "LaplaceNetDataModule",
    "LMDBImageDataModule",
    "MNISTDataModule",
    "StreamingImageDataModule",
    "SyntheticImageDataModule",
]
