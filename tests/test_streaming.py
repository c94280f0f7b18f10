"""Data at scale: ``diffrep prepare`` (folder or official LMDB -> LitData chunks), the streaming
datamodule, the official LMDB reader, and resume mid-epoch on the streaming path."""

from __future__ import annotations

import io
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import quiet_trainer, tiny_unet_config
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image
from sklearn.datasets import load_digits

from diffrep.datamodules import ImageFolderDataModule, LMDBImageDataModule, StreamingImageDataModule
from diffrep.datamodules.base import DataError
from diffrep.datamodules.lmdb import OfficialLMDB
from diffrep.datamodules.prepare import prepare
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.lightning_modules import DPM

SPLIT = dict(val_size=20, test_size=0.1, seed=3)


def digit_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as uint8 greyscale images, enlarged to 12x16 (not square, so the crop acts)."""
    digits = load_digits()
    images = (digits.images[:n] * 255 / 16).astype(np.uint8)
    return np.repeat(np.repeat(images, 2, axis=2), 2, axis=1)[:, :, 2:14].transpose(0, 2, 1), digits.target[:n]


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits_folder")
    images, labels = digit_images(360)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (root / f"class_{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(root / f"class_{label}" / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def prepared(digit_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "digits16"
    prepare(digit_folder, out, image_size=16, channels=1, num_workers=1, **SPLIT)
    return out


def write_official_lmdb(path: Path, images: np.ndarray, prefix: str = "256", width: int = 5) -> None:
    """An LMDB file as the official data_resize_*.py scripts write one: PNG bytes under
    '<prefix>-<zero-padded index>' and a 'length' key."""
    import lmdb

    with lmdb.open(str(path), map_size=2**28) as env, env.begin(write=True) as txn:
        for i, image in enumerate(images):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            txn.put(f"{prefix}-{str(i).zfill(width)}".encode(), buffer.getvalue())
        txn.put(b"length", str(len(images)).encode())


def pixels_by_content(dataset) -> list[tuple[bytes, int]]:
    """A split's (image, label) pairs in a canonical order, to compare splits whatever their order."""
    return sorted((x.numpy().tobytes(), int(y)) for x, y in (dataset[i] for i in range(len(dataset))))


def test_prepared_splits_hold_the_in_memory_folder_splits(digit_folder, prepared):
    """Same seed and sizes: the streamed splits hold exactly the pixels and labels the in-memory
    folder module yields, and the class names and shape come through the metadata."""
    folder = ImageFolderDataModule(root=str(digit_folder), channels=1, image_size=16, **SPLIT)
    folder.setup()
    streamed = StreamingImageDataModule(root=str(prepared), batch_size=16)
    streamed.setup()
    for split in ("train", "val", "test"):
        assert pixels_by_content(streamed.splits[split]) == pixels_by_content(folder.splits[split]), split
    assert streamed.class_names == folder.class_names == tuple(f"class_{d}" for d in range(10))
    assert streamed.image_shape == folder.image_shape == (1, 16, 16)
    assert [len(streamed.splits[s]) for s in ("train", "val", "test")] == [304, 20, 36]
    batches = list(streamed.train_dataloader())
    assert len(batches) == 304 // 16 and batches[0][0].shape == (16, 1, 16, 16)
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == sorted(streamed.splits["train"].labels.tolist())  # each image once an epoch


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_streaming_resume_mid_epoch_continues_the_unbroken_run_exactly(prepared, tmp_path, num_workers):
    """Stop at step 12 of a 19-step epoch, resume from last.ckpt with a scrambled RNG and run past
    the epoch's end: every loss equals the unbroken run's, through LitData's own loader state, with
    random flips, also when loader workers read the stream."""
    def model() -> DPM:
        L.seed_everything(0)
        return DPM(
            unet=tiny_unet_config(),
            schedule=ScheduleConfig(num_timesteps=1000),
            optimisation={"lr": 2e-3},
            ema={"decay": 0.9},
        )

    def data() -> StreamingImageDataModule:
        return StreamingImageDataModule(root=str(prepared), batch_size=16, flip=True, num_workers=num_workers)

    straight = LossRecorder()
    quiet_trainer(tmp_path / "a", max_steps=24, callbacks=[straight]).fit(model(), datamodule=data())
    first = LossRecorder()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "b", save_last=True, every_n_train_steps=6)
    quiet_trainer(tmp_path / "b", max_steps=12, callbacks=[first, ckpt], enable_checkpointing=True).fit(
        model(), datamodule=data()
    )
    second = LossRecorder()
    trainer = quiet_trainer(tmp_path / "b", max_steps=24, callbacks=[second])
    torch.manual_seed(1234)
    trainer.fit(model(), datamodule=data(), ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert trainer.global_step == 24 and len(second.losses) == 12
    assert first.losses == straight.losses[:12]
    assert second.losses == straight.losses[12:]


def test_official_lmdb_layout_is_read_and_split_like_a_folder(digit_folder, tmp_path):
    """An LMDB file in PDAE's CelebA-64 layout ('None-0000042'): the key prefix and width are read
    from the file, the images decode to the folder's pixels, and the splits are the folder's."""
    paths = sorted(digit_folder.rglob("*.png"))
    images = np.stack([np.asarray(Image.open(p)) for p in paths])
    write_official_lmdb(tmp_path / "pdae.lmdb", images, prefix="None", width=7)
    source = OfficialLMDB(tmp_path / "pdae.lmdb")
    assert (source.prefix, source.width, len(source)) == (b"None", 7, 360)

    lmdb_data = LMDBImageDataModule(root=str(tmp_path / "pdae.lmdb"), channels=1, image_size=16, **SPLIT)
    lmdb_data.setup()
    folder = ImageFolderDataModule(root=str(digit_folder), channels=1, image_size=16, **SPLIT)
    folder.setup()
    for split in ("train", "val", "test"):  # same order too: both index the sorted file list
        lazy, array = lmdb_data.splits[split], folder.splits[split]
        assert len(lazy) == len(array)
        assert all(torch.equal(lazy[i][0], array[i][0]) for i in range(0, len(lazy), 7)), split
    x, y = next(iter(lmdb_data.train_dataloader()))
    assert x.shape == (64, 1, 16, 16) and (y == -1).all()  # the official files carry no labels

    out = prepare(tmp_path / "pdae.lmdb", tmp_path / "from_lmdb", image_size=16, channels=1, num_workers=1, **SPLIT)
    assert out["counts"] == {"train": 304, "val": 20, "test": 36}


def test_bad_sources_and_outputs_name_the_fix(digit_folder, prepared, tmp_path):
    with pytest.raises(ConfigError, match="not empty"):  # a prepared data set is never overwritten
        prepare(digit_folder, prepared, image_size=16)
    with pytest.raises(DataError, match="diffrep prepare"):
        StreamingImageDataModule(root=str(tmp_path))
    (tmp_path / "junk.lmdb").mkdir()
    (tmp_path / "junk.lmdb" / "data.mdb").write_bytes(b"")
    with pytest.raises(DataError):
        OfficialLMDB(tmp_path / "junk.lmdb")
    with pytest.raises(DataError, match="no data.mdb"):
        OfficialLMDB(tmp_path)
    import lmdb

    with lmdb.open(str(tmp_path / "other.lmdb"), map_size=2**20) as env, env.begin(write=True) as txn:
        txn.put(b"somekey", b"x")
    with pytest.raises(DataError, match="official layout"):
        OfficialLMDB(tmp_path / "other.lmdb")


def test_the_prepare_command_exits_2_naming_the_problem(tmp_path, capsys):
    from diffrep.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "out"), "--image_size", "16"])
    assert stop.value.code == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_folder_too_big_for_memory_says_how_to_prepare_it(digit_folder):
    data = ImageFolderDataModule(root=str(digit_folder), channels=1, image_size=16, max_in_memory_gb=1e-6)
    with pytest.warns(UserWarning, match=f"diffrep prepare {digit_folder} PREPARED --image_size 16 --channels 1"):
        data.setup()
    assert data.in_memory_gb(100_000) == pytest.approx(2 * 100_000 * 256 / 2**30)
