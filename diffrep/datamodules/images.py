"""Reading image files into uint8 arrays: one crop-and-resize for every source (folders, the
official LMDB files, ``diffrep prepare``), so a data set prepared once gives the same pixels as
the same data read directly."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from diffrep.errors import ConfigError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}

#: ``centre``: the largest centred square. ``celeba``: the 128x128 face crop at (top 57, left 25)
#: of an aligned 178x218 CelebA image, the crop of both official codes (PDAE's CropCelebA64,
#: Diff-AE's d2c_crop), which a centre crop does not reproduce.
Crop = Literal["centre", "celeba"]
CROPS: tuple[str, ...] = ("centre", "celeba")


def list_images(root: Path) -> tuple[list[Path], list[int], tuple[str, ...] | None]:
    """Image paths under ``root`` (recursive, sorted), their labels and the class names.

    Labels are the sorted sub-folder names when every image sits in a sub-folder, else -1."""
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if all(p.parent != root for p in paths) and paths:
        classes = sorted({p.parent.name for p in paths})
        index = {name: i for i, name in enumerate(classes)}
        return paths, [index[p.parent.name] for p in paths], tuple(classes)
    return paths, [-1] * len(paths), None


def load_square(source: Path | bytes, size: int, channels: int, crop: Crop = "centre") -> np.ndarray:
    """One image file (a path or its encoded bytes) as uint8 (C, size, size): cropped, then a
    bicubic resize. Raises OSError / PIL's UnidentifiedImageError on unreadable input."""
    if crop not in CROPS:
        raise ConfigError(f"crop {crop!r} is not one of {', '.join(CROPS)}")
    with Image.open(BytesIO(source) if isinstance(source, bytes) else source) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        if crop == "celeba":
            box = (25, 57, 25 + 128, 57 + 128)
        else:
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            box = (left, top, left + side, top + side)
        img = img.crop(box)
        if img.size != (size, size):
            img = img.resize((size, size), Image.BICUBIC)
        array = np.asarray(img, dtype=np.uint8)
    return array[None].copy() if array.ndim == 2 else array.transpose(2, 0, 1).copy()
