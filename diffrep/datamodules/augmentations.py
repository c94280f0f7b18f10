"""LaplaceNet's weak and strong augmentations, as the official code builds them
(korabs-x/representation_score_based, ``LaplaceNet/config/datasets.py`` and ``config/augmentations.py``):

- weak: random horizontal flip, random crop at the image size with 4 pixels of reflect padding,
  RandAugment(1);
- strong: the same with RandAugment(2).

RandAugment is the official variant (UDA's list), not torchvision's ``RandAugment`` class: ``n``
operations drawn uniformly with replacement from AutoContrast, Brightness, Color, Contrast,
Equalize, Identity, Posterize, Rotate, Sharpness, ShearX/Y, Solarize, TranslateX/Y, each with a
magnitude uniform in its range (Brightness/Color/Contrast/Sharpness factors in [0.05, 0.95],
Posterize 4-8 bits, Rotate 0-30 degrees, Shear 0-0.3, Translate 0-0.3 of the side, Solarize
threshold 0-256; rotations, shears and translations get a random sign), then a Cutout of side
U(0, 0.5) x the image side filled with (125, 123, 114) (its first channel on grey images).

The operations are torchvision's (``transforms.v2.functional``, on uint8 tensors). The random
draws come from an explicit ``torch.Generator`` seeded per item and view rather than from the
global RNGs the official code uses, so an augmented batch is a function of (seed, epoch, step):
a run resumed mid-epoch sees the same images, whatever the number of loader workers. Shears are
about the top-left corner, as PIL's affine transform in the official code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

CUTOUT_FILL = (125, 123, 114)


def _signed(v: float, g: torch.Generator) -> float:
    return -v if torch.rand((), generator=g) > 0.5 else v


def _shear(img: Tensor, v: float, g: torch.Generator, axis: int) -> Tensor:
    degrees = math.degrees(math.atan(_signed(v, g)))
    shear = [degrees, 0.0] if axis == 0 else [0.0, degrees]
    return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, center=[0.0, 0.0])


def _translate(img: Tensor, v: float, g: torch.Generator, axis: int) -> Tensor:
    shift = round(_signed(v, g) * img.shape[-1 if axis == 0 else -2])
    return TF.affine(img, angle=0.0, translate=[shift, 0] if axis == 0 else [0, shift], scale=1.0, shear=[0.0, 0.0])


Operation = Callable[[Tensor, float, torch.Generator], Tensor]
# (operation, low, high) as the official augment_list()
OPERATIONS: list[tuple[str, Operation, float, float]] = [
    ("AutoContrast", lambda img, v, g: TF.autocontrast(img), 0, 1),
    ("Brightness", lambda img, v, g: TF.adjust_brightness(img, v), 0.05, 0.95),
    ("Color", lambda img, v, g: TF.adjust_saturation(img, v), 0.05, 0.95),
    ("Contrast", lambda img, v, g: TF.adjust_contrast(img, v), 0.05, 0.95),
    ("Equalize", lambda img, v, g: TF.equalize(img), 0, 1),
    ("Identity", lambda img, v, g: img, 0, 1),
    ("Posterize", lambda img, v, g: TF.posterize(img, max(1, int(v))), 4, 8),
    ("Rotate", lambda img, v, g: TF.rotate(img, _signed(v, g)), 0, 30),
    ("Sharpness", lambda img, v, g: TF.adjust_sharpness(img, v), 0.05, 0.95),
    ("ShearX", lambda img, v, g: _shear(img, v, g, 0), 0.0, 0.3),
    ("ShearY", lambda img, v, g: _shear(img, v, g, 1), 0.0, 0.3),
    ("Solarize", lambda img, v, g: img if v > 255 else TF.solarize(img, v), 0, 256),
    ("TranslateX", lambda img, v, g: _translate(img, v, g, 0), 0.0, 0.3),
    ("TranslateY", lambda img, v, g: _translate(img, v, g, 1), 0.0, 0.3),
]


def cutout(img: Tensor, fraction: float, g: torch.Generator) -> Tensor:
    """A square of side ``fraction`` x width at a random centre, filled with the official grey."""
    side = fraction * img.shape[-1]
    if side <= 0:
        return img
    h, w = img.shape[-2:]
    x0 = int(max(0, float(torch.rand((), generator=g)) * w - side / 2))
    y0 = int(max(0, float(torch.rand((), generator=g)) * h - side / 2))
    x1, y1 = int(min(w, x0 + side)), int(min(h, y0 + side))
    out = img.clone()
    fill = torch.tensor(CUTOUT_FILL[: img.shape[0]] if img.shape[0] <= 3 else CUTOUT_FILL[:1], dtype=img.dtype)
    out[:, y0:y1 + 1, x0:x1 + 1] = fill[:, None, None]  # PIL's rectangle includes its far edge
    return out


def rand_augment(img: Tensor, n: int, g: torch.Generator) -> Tensor:
    """The official RandAugment(n) on a uint8 (C, H, W) image, then its Cutout."""
    for choice in torch.randint(len(OPERATIONS), (n,), generator=g).tolist():
        _, op, low, high = OPERATIONS[choice]
        img = op(img, float(torch.rand((), generator=g)) * (high - low) + low, g)
    return cutout(img, float(torch.rand((), generator=g)) * 0.5, g)


def flip_and_crop(img: Tensor, padding: int, g: torch.Generator) -> Tensor:
    """Random horizontal flip, then a random crop of the original size from the reflect-padded image."""
    if torch.rand((), generator=g) < 0.5:
        img = img.flip(-1)
    if padding <= 0:
        return img
    h, w = img.shape[-2:]
    padded = F.pad(img[None].float(), (padding,) * 4, mode="reflect")[0].to(img.dtype)
    top, left = (int(v) for v in torch.randint(2 * padding + 1, (2,), generator=g))
    return padded[:, top:top + h, left:left + w]


def augment(img: Tensor, strength: int, g: torch.Generator, padding: int = 4) -> Tensor:
    """weak (``strength`` 1) or strong (2) augmentation of a uint8 (C, H, W) image."""
    return rand_augment(flip_and_crop(img, padding, g), strength, g)
