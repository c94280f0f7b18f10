import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from diffrep.datamodules import (
    CIFAR10DataModule,
    DataError,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
)
from diffrep.datamodules.idx import read_idx, write_idx


def write_mnist_like(folder, n_train=40, n_test=10, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", rng.integers(0, 10, n))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    write_idx(path, data)
    assert torch.equal(read_idx(path), torch.from_numpy(data))


def test_truncated_idx_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, np.zeros((5, 4, 4)))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="corrupt"):
        read_idx(path)
    path.write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError, match="magic"):
        read_idx(path)


def test_fashion_mnist_from_files_pads_to_32_and_scales(tmp_path):
    write_mnist_like(tmp_path / "fashion-mnist")
    dm = FashionMNISTDataModule(root=str(tmp_path), val_size=8, batch_size=4)
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [32, 8, 10]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 32, 32) and y.dtype == torch.long
    assert x.min() >= -1 and x.max() <= 1
    assert torch.all(x[:, :, :2] == -1)  # the 2-pixel padding is background


def test_mnist_reads_plain_idx_files(tmp_path):
    write_mnist_like(tmp_path / "mnist", gz=False)
    dm = MNISTDataModule(root=str(tmp_path), val_size=0.25)
    dm.setup()
    assert len(dm.splits["train"]) == 30 and len(dm.splits["val"]) == 10


def test_missing_files_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr("diffrep.datamodules.mnist.search_roots", lambda root, download=False: [tmp_path])
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        FashionMNISTDataModule().setup()
    with pytest.raises(DataError, match="download true"):
        MNISTDataModule(root=str(tmp_path)).setup()


def test_a_typed_root_is_the_only_place_searched_and_must_exist(tmp_path, monkeypatch):
    """A root the user typed is never silently replaced by $DIFFREP_DATA, ./data or /usr/share/datasets."""
    write_mnist_like(tmp_path / "elsewhere" / "fashion-mnist")
    monkeypatch.setenv("DIFFREP_DATA", str(tmp_path / "elsewhere"))  # would be found by the search
    missing = tmp_path / "no_such_dir"
    for module in (FashionMNISTDataModule, MNISTDataModule, CIFAR10DataModule, ImageFolderDataModule):
        with pytest.raises(DataError, match=f"{missing}.* does not exist"):
            module(root=str(missing)).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not found in [^,]*empty \\(or"):  # only the typed root is named
        FashionMNISTDataModule(root=str(tmp_path / "empty")).setup()
    dm = FashionMNISTDataModule(val_size=4)  # no root: the search list applies
    dm.setup()
    assert len(dm.splits["train"]) == 36


def test_cifar10_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 6))}
        (folder / name).write_bytes(pickle.dumps(batch))
    dm = CIFAR10DataModule(root=str(tmp_path), val_size=5, flip=True)
    dm.setup()
    x, _ = dm.splits["train"][0]
    assert x.shape == (3, 32, 32) and len(dm.splits["train"]) == 25 and len(dm.splits["test"]) == 6
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="corrupt"):
        CIFAR10DataModule(root=str(tmp_path)).load_split("test")


def test_image_folder_crops_resizes_labels_and_lists_broken_files(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, test_size=2, val_size=2)
    dm.setup()
    x, y = dm.splits["test"][0]
    assert x.shape == (3, 16, 16) and set(dm.splits["train"].labels.tolist()) <= {0, 1}
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match="broken.png"):
        ImageFolderDataModule(root=str(tmp_path), image_size=16).setup()


def test_digits_resize_and_flip_keep_range():
    dm = DigitsDataModule(image_size=16, val_size=100, flip=True)
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [1400, 100, 297]
    x, y = dm.splits["train"][0]
    assert x.shape == (1, 16, 16) and -1 <= x.min() and x.max() <= 1 and 0 <= int(y) <= 9
    flipped = {tuple(dm.splits["train"][0][0].flatten()[:16].tolist()) for _ in range(20)}
    assert len(flipped) == 2  # random horizontal flip shows both orientations


def test_a_datamodule_that_reads_no_images_names_both_hooks():
    class ReadsNothing(ImageDataModule):
        pass

    with pytest.raises(TypeError, match="ReadsNothing reads its images with neither load_split .* nor build_splits"):
        ReadsNothing().setup()
