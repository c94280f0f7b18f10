"""LaplaceNet's batches (Sellars et al. 2021, as the official code the DRL paper runs builds them:
korabs-x/representation_score_based, ``LaplaceNet/helpers.py`` and ``lp/db_semisuper.py``).

The images come from any array-backed diffrep datamodule (``source``: its training split, with its
validation split held out; its test split for ``diffrep test``). ``labels_per_class`` labels per
class are drawn from the training split with ``label_seed`` (the evaluation's ``draw_labelled``,
so the same draw as the frozen-code probes); every other training image is unlabelled.

Epochs, as the official loop:
- the first ``warmup_epochs`` (10) are supervised: each is ``warmup_passes`` (10) passes over the
  labelled images in shuffled batches of ``batch_size`` (drop last);
- every later epoch is one pass over the unlabelled images in batches of ``batch_size -
  labelled_batch_size``, each joined with ``labelled_batch_size`` labelled images from an endless
  stream of shuffles of the labelled set (restarted each epoch), labelled first.

Each image comes as ``aug_num`` augmented views: labelled images weakly, unlabelled ones strongly
(``diffrep.datamodules.augmentations``), with its label or its current pseudo-label and weight.
The pseudo-labels live in shared-memory tensors the model fills at the start of each semi-
supervised epoch (``set_pseudo_labels``), so loader workers read the current ones; they are saved
in the checkpoint (``state_dict``), so a run resumed mid-epoch trains on the labels it had.

Every batch is a function of (seed, epoch, step): the order is drawn from generators seeded by
(seed, epoch, pass), and each item's augmentation from a generator seeded by (seed, epoch, step,
position). The loader saves how many batches of the epoch it has given, and a resumed run
continues with the next one, bit-identically, whatever the number of workers.

The epochs differ in length, so the loader is rebuilt every epoch: the datamodule sets the
trainer's ``reload_dataloaders_every_n_epochs`` to 1 in ``setup``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffrep.datamodules.augmentations import augment
from diffrep.datamodules.base import ImageArrayDataset, ImageDataModule, to_model_range
from diffrep.datamodules.splits import draw_labelled
from diffrep.errors import ConfigError

WEAK, STRONG = 1, 2  # RandAugment operations per view


def item_seed(*keys: int) -> int:
    """A 32-bit seed from integers (numpy's SeedSequence hashing: distinct keys, unrelated streams)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def _permutation(indices: np.ndarray, *keys: int) -> np.ndarray:
    return np.random.default_rng(item_seed(*keys)).permutation(indices)


class LaplaceNetBatches:
    """The batches of one epoch as lists of (index, augmentation seed), a pure function of the settings."""

    def __init__(self, labelled: np.ndarray, unlabelled: np.ndarray, batch_size: int, labelled_batch_size: int,
                 warmup_epochs: int, warmup_passes: int, seed: int) -> None:
        self.labelled, self.unlabelled = labelled, unlabelled
        self.batch_size, self.labelled_batch_size = batch_size, labelled_batch_size
        self.warmup_epochs, self.warmup_passes, self.seed = warmup_epochs, warmup_passes, seed

    def is_warmup(self, epoch: int) -> bool:
        return epoch < self.warmup_epochs

    @property
    def labelled_batches_per_pass(self) -> int:
        return len(self.labelled) // self.batch_size

    def batches_per_pass(self, epoch: int) -> int:
        """Warm-up: batches in one pass over the labelled images; later: the epoch's batches."""
        if self.is_warmup(epoch):
            return self.labelled_batches_per_pass
        return len(self.unlabelled) // (self.batch_size - self.labelled_batch_size)

    def warmup_batches(self, epoch: int, stream: int = 0) -> list[np.ndarray]:
        """``warmup_passes`` shuffled passes over the labelled images in whole batches."""
        indices = []
        for p in range(self.warmup_passes):
            order = _permutation(self.labelled, self.seed, epoch, stream, p)
            indices += [order[i * self.batch_size:(i + 1) * self.batch_size]
                        for i in range(len(order) // self.batch_size)]
        return indices

    def semi_batches(self, epoch: int) -> list[np.ndarray]:
        """One pass over the unlabelled images, each batch led by labelled ones from an endless stream."""
        per_step = self.batch_size - self.labelled_batch_size
        steps = len(self.unlabelled) // per_step
        order = _permutation(self.unlabelled, self.seed, epoch, 1)
        needed = steps * self.labelled_batch_size
        stream = np.concatenate([_permutation(self.labelled, self.seed, epoch, 2, j)
                                 for j in range(-(-needed // len(self.labelled)))])
        return [np.concatenate([stream[i * self.labelled_batch_size:(i + 1) * self.labelled_batch_size],
                                order[i * per_step:(i + 1) * per_step]]) for i in range(steps)]

    def __call__(self, epoch: int, check_t_run: int | None = None) -> list[list[tuple[int, int]]]:
        """The epoch's batches; ``check_t_run``: a warm-up epoch of check_t's run number k instead."""
        if check_t_run is not None:
            indices, key = self.warmup_batches(epoch, 3 + check_t_run), (3 + check_t_run) * 1_000_000 + epoch
        elif self.is_warmup(epoch):
            indices, key = self.warmup_batches(epoch), epoch
        else:
            indices, key = self.semi_batches(epoch), epoch
        return [[(int(index), item_seed(self.seed, key, step, pos)) for pos, index in enumerate(batch)]
                for step, batch in enumerate(indices)]


class LaplaceNetDataset(Dataset):
    """(views (aug_num, C, H, W) in [-1, 1], target, weight) of (index, augmentation seed)."""

    def __init__(self, images: Tensor, labels: Tensor, labelled: Tensor, image_size: int, aug_num: int,
                 crop_padding: int) -> None:
        self.images, self.image_size, self.aug_num, self.crop_padding = images, image_size, aug_num, crop_padding
        self.is_labelled = torch.zeros(len(images), dtype=torch.bool)
        self.is_labelled[labelled] = True
        self.targets = torch.full((len(images),), -1, dtype=torch.long).share_memory_()
        self.targets[labelled] = labels[labelled].long()
        self.weights = torch.ones(len(images), dtype=torch.float32).share_memory_()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        index, seed = item
        g = torch.Generator().manual_seed(seed)
        strength = WEAK if self.is_labelled[index] else STRONG
        views = torch.stack([to_model_range(augment(self.images[index], strength, g, self.crop_padding),
                                            self.image_size) for _ in range(self.aug_num)])
        return views, self.targets[index], self.weights[index]


class EpochBatchSampler:
    """Yields one epoch's batches, skipping the first ``start`` once (a resumed epoch)."""

    def __init__(self, batches: list[list[tuple[int, int]]]) -> None:
        self.batches, self.start = batches, 0

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        start, self.start = self.start, 0
        return iter(self.batches[start:])

    def __len__(self) -> int:
        return len(self.batches)


class EpochLoader(DataLoader):
    """A loader of one epoch that Lightning checkpoints mid-epoch (``state_dict``/``load_state_dict``)."""

    def __init__(self, dataset: Dataset, batches: list[list[tuple[int, int]]], epoch: int, **kwargs: Any) -> None:
        self.epoch_sampler, self.epoch = EpochBatchSampler(batches), epoch
        super().__init__(dataset, batch_sampler=self.epoch_sampler, **kwargs)
        self._yielded = 0

    def __iter__(self) -> Iterator[Any]:
        self._yielded = self.epoch_sampler.start
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["epoch"]) == self.epoch:
            self.epoch_sampler.start = int(state["batches"])


class LaplaceNetDataModule(L.LightningDataModule):
    """LaplaceNet's semi-supervised batches over an image datamodule (module docstring)."""

    def __init__(self, source: ImageDataModule, labels_per_class: int = 10, label_seed: int = 0,
                 batch_size: int = 100, labelled_batch_size: int = 50, aug_num: int = 3, warmup_epochs: int = 10,
                 warmup_passes: int = 10, crop_padding: int = 4, num_workers: int = 0,
                 eval_batch_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        if not 0 < labelled_batch_size < batch_size:
            raise ConfigError(f"labelled_batch_size must be between 0 and batch_size ({batch_size}) exclusive, "
                              f"got {labelled_batch_size}")
        if aug_num < 1 or labels_per_class < 1 or warmup_epochs < 0 or warmup_passes < 1:
            raise ConfigError("aug_num, labels_per_class and warmup_passes must be at least 1, warmup_epochs >= 0")
        self.source, self.labels_per_class, self.label_seed = source, labels_per_class, label_seed
        self.batch_size, self.labelled_batch_size, self.aug_num = batch_size, labelled_batch_size, aug_num
        self.warmup_epochs, self.warmup_passes, self.crop_padding = warmup_epochs, warmup_passes, crop_padding
        self.num_workers, self.eval_batch_size, self.seed = num_workers, eval_batch_size, seed
        self.dataset: LaplaceNetDataset | None = None
        self._pending_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None:  # epochs differ in length: a new loader (and its length) every epoch
            self.trainer.reload_dataloaders_every_n_epochs = 1
        if self.dataset is not None:
            return
        self.source.setup(stage)
        train = self.source.splits["train"]
        if not isinstance(train, ImageArrayDataset):
            raise ConfigError(f"LaplaceNet reads its images as arrays; {type(self.source).__name__} decodes them "
                              "on demand. Use an array-backed datamodule (Fashion-MNIST, MNIST, CIFAR-10, digits, "
                              "a folder)")
        self.labelled = draw_labelled(train.labels, self.labels_per_class, self.label_seed)
        if len(self.labelled) < self.batch_size:
            raise ConfigError(f"{len(self.labelled)} labelled images give no warm-up batch of {self.batch_size}; "
                              "lower batch_size or raise labels_per_class")
        self.dataset = LaplaceNetDataset(train.images, train.labels, self.labelled, self.source.image_size,
                                         self.aug_num, self.crop_padding)
        unlabelled = np.flatnonzero(~self.dataset.is_labelled.numpy())
        self.batches = LaplaceNetBatches(self.labelled.numpy(), unlabelled, self.batch_size,
                                         self.labelled_batch_size, self.warmup_epochs, self.warmup_passes, self.seed)
        if self._pending_state is not None:
            self.load_state_dict(self._pending_state)

    @property
    def train_labels(self) -> Tensor:
        """True labels of the training split (only the labelled ones feed training)."""
        self.setup()
        return self.source.splits["train"].labels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.source.image_shape

    def skip_warmup(self) -> None:
        """Start with the semi-supervised epochs: LaplaceNet's check_t has done the warm-up."""
        self.setup()
        self.batches.warmup_epochs = 0

    # ----------------------------------------------------------- pseudo-labels
    def set_pseudo_labels(self, labels: Tensor, weights: Tensor) -> None:
        """The model's new pseudo-labels and weights of every training image (labelled ones keep theirs)."""
        assert self.dataset is not None
        unlabelled = ~self.dataset.is_labelled
        self.dataset.targets[unlabelled] = torch.as_tensor(labels, dtype=torch.long)[unlabelled]
        self.dataset.weights.copy_(torch.as_tensor(weights, dtype=torch.float32))

    def state_dict(self) -> dict[str, Any]:
        if self.dataset is None:
            return {}
        return {"targets": self.dataset.targets.clone(), "weights": self.dataset.weights.clone(),
                "labelled": self.labelled.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.dataset is None:
            self._pending_state = state
            return
        if not torch.equal(state["labelled"], self.labelled):
            raise ConfigError("the checkpoint was trained on another labelled draw; use its labels_per_class, "
                              "label_seed and data (its config.yaml)")
        self.dataset.targets.copy_(state["targets"])
        self.dataset.weights.copy_(state["weights"])
        self._pending_state = None

    # ---------------------------------------------------------------- loaders
    def _loader_kwargs(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "pin_memory": torch.cuda.is_available()}

    def train_dataloader(self) -> EpochLoader:
        self.setup()
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return EpochLoader(self.dataset, self.batches(epoch), epoch, **self._loader_kwargs())

    def feature_dataloader(self) -> DataLoader:
        """The training images in order, without augmentation: what the graph is built on."""
        self.setup()
        return DataLoader(self.source.evaluation_split("train"), batch_size=self.eval_batch_size, shuffle=False,
                          **self._loader_kwargs())

    def check_t_dataloader(self, run: int, epoch: int) -> EpochLoader:
        """A warm-up epoch of ``check_t``'s run number ``run`` (its short supervised runs)."""
        self.setup()
        return EpochLoader(self.dataset, self.batches(epoch, check_t_run=run), epoch, **self._loader_kwargs())

    def val_dataloader(self) -> DataLoader:
        return self.source.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self.source.test_dataloader()
