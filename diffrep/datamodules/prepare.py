"""``diffrep prepare SOURCE OUTPUT``: a folder of images or an official LMDB file, cropped, resized
and split once, written as LitData chunks that :class:`~diffrep.datamodules.StreamingImageDataModule`
streams to any number of ranks and nodes (from local disk or, after copying, object storage).

OUTPUT holds ``train/``, ``val/`` and ``test/`` (LitData's ``index.json`` and chunk files),
``labels-<split>.npy`` and ``diffrep.json`` (size, channels, class names, counts, the source).
The splits are the ones :class:`~diffrep.datamodules.ImageFolderDataModule` would hold out with
the same ``--seed``, ``--val_size`` and ``--test_size``, so prepared and in-memory runs compare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from diffrep.datamodules.base import DataError
from diffrep.datamodules.images import CROPS, IMAGE_EXTENSIONS, Crop, list_images, load_square
from diffrep.datamodules.lmdb import OfficialLMDB, is_lmdb
from diffrep.datamodules.splits import train_val_test
from diffrep.errors import ConfigError

SPLITS = ("train", "val", "test")
META = "diffrep.json"


class DecodeItem:
    """LitData's ``fn``: one source index -> {"image": uint8 (C, H, W), "label": int}. A class, not a
    closure, so LitData's worker processes can unpickle it."""

    def __init__(self, source: list[Path] | OfficialLMDB, labels: list[int], size: int, channels: int,
                 crop: Crop) -> None:
        self.source, self.labels, self.size, self.channels, self.crop = source, labels, size, channels, crop

    def __call__(self, index: int) -> dict[str, Any]:
        try:
            image = load_square(self.source[index], self.size, self.channels, self.crop)
        except OSError as err:  # PIL's UnidentifiedImageError is an OSError
            raise DataError(f"image {index} of the source cannot be decoded ({err}); remove or replace it") from err
        return {"image": image, "label": int(self.labels[index])}


def read_source(source: Path) -> tuple[list[Path] | OfficialLMDB, list[int], tuple[str, ...] | None]:
    """The images of a folder (labels from sub-folders) or an official LMDB file (no labels)."""
    if is_lmdb(source):
        lmdb_file = OfficialLMDB(source)
        return lmdb_file, [-1] * len(lmdb_file), None
    if not source.is_dir():
        raise DataError(f"{source} does not exist. Fix: pass a folder of images or an official .lmdb folder")
    paths, labels, class_names = list_images(source)
    if not paths:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {source}")
    return paths, labels, class_names


def prepare(source: str | Path, output: str | Path, image_size: int, channels: int = 3, crop: Crop = "centre",
            val_size: int | float = 0.1, test_size: int | float = 0.1, seed: int = 0, num_workers: int | None = None,
            chunk_bytes: str = "64MB") -> dict[str, Any]:
    """Write the three splits of ``source`` as LitData chunks under ``output``; returns the metadata."""
    from litdata import optimize

    source, output = Path(source).expanduser(), Path(output).expanduser()
    if output.exists() and any(output.iterdir()):
        raise ConfigError(f"{output} exists and is not empty; choose a new OUTPUT folder (nothing is overwritten)")
    items, labels, class_names = read_source(source)
    indices = train_val_test(len(labels), val_size, test_size, seed)
    decode = DecodeItem(items, labels, image_size, channels, crop)
    workers = num_workers or max(1, min(8, os.cpu_count() or 1))
    output.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        index = sorted(int(i) for i in indices[split])
        counts[split] = len(index)
        np.save(output / f"labels-{split}.npy", np.asarray([labels[i] for i in index], dtype=np.int64))
        if index:
            optimize(fn=decode, inputs=index, output_dir=str(output / split), chunk_bytes=chunk_bytes,
                     num_workers=min(workers, len(index)), mode=None, start_method="fork")
    meta = {"image_size": image_size, "channels": channels, "crop": crop, "class_names": class_names,
            "counts": counts, "source": str(source), "seed": seed, "val_size": val_size, "test_size": test_size}
    (output / META).write_text(json.dumps(meta, indent=1))
    return meta


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="diffrep prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a folder of images (sub-folders = classes) or an official .lmdb folder")
    parser.add_argument("output", help="a new folder for the chunks")
    parser.add_argument("--image_size", type=int, required=True)
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--crop", default="centre", choices=CROPS)
    parser.add_argument("--val_size", type=_size, default=0.1, help="a fraction (0.1) or a count (2000)")
    parser.add_argument("--test_size", type=_size, default=0.1, help="a fraction (0.1) or a count (2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=None)
    parser.add_argument("--chunk_bytes", default="64MB")
    opts = parser.parse_args(args)
    try:
        meta = prepare(opts.source, opts.output, opts.image_size, opts.channels, opts.crop, opts.val_size,
                       opts.test_size, opts.seed, opts.num_workers, opts.chunk_bytes)
    except (DataError, ConfigError) as err:
        print(f"diffrep prepare: error: {err}", file=sys.stderr)
        sys.exit(2)
    counts = ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    print(f"prepared {opts.output}: {counts} images at {opts.image_size}x{opts.image_size}. Train on it with "
          f"--data diffrep.datamodules.StreamingImageDataModule --data.init_args.root {opts.output}")


def _size(text: str) -> int | float:
    return float(text) if "." in text else int(text)
