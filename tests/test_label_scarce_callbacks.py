"""The label-scarce evaluation as callbacks, the online probe, probe codes without augmentation,
and class names in plots and tables."""

import csv

import lightning as L
import pytest
import torch
import wandb
from conftest import digits, make_drl, quiet_trainer
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from diffrep.callbacks import (
    DownstreamProbe,
    LatentPlot,
    LinearProbe,
    OnlineLinearProbe,
    SemiSupervisedProbe,
    TimeCodeProbe,
)
from diffrep.datamodules import FashionMNISTDataModule
from diffrep.evaluation.features import encode_split


def logged_keys(tmp_path) -> tuple[set[str], list[dict]]:
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    return {k for r in rows for k, v in r.items() if v}, rows


def test_semi_supervised_downstream_and_time_probes_log_in_a_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    model = make_drl(code={"latent_dim": 4, "time_dependent": True, "encode_times": (0.5,)})
    callbacks = [
        SemiSupervisedProbe(labels_per_class=(1, 5), seeds=(0, 1), max_train=400, max_test=200, every_n_epochs=100),
        DownstreamProbe(svm_labels=(50,), seeds=(0,), mlp_epochs=3, mlp_lr_grid=(1e-3,), max_train=400, max_test=200,
                        every_n_epochs=100),
        TimeCodeProbe(grid=2, svm_labels=50, seeds=(0,), max_train=300, max_test=150, every_n_epochs=100),
    ]
    loggers = [CSVLogger(str(tmp_path), name="csv"), WandbLogger(save_dir=str(tmp_path), offline=True, project="t")]
    trainer = quiet_trainer(tmp_path, max_steps=3, logger=loggers, callbacks=callbacks, log_every_n_steps=1)
    trainer.fit(model, datamodule=digits(subset=512))
    wandb.finish()  # else the next test's WandbLogger reuses this run and writes into this folder
    keys, rows = logged_keys(tmp_path)
    for method in ("supervised", "label_spreading", "self_training"):
        assert {f"semi/{method}_1_mean", f"semi/{method}_5_std"} <= keys, method
    prefixes = ("semi/", "downstream/", "probe_t/")
    logged = {k: float(v) for r in rows for k, v in r.items() if v and k.startswith(prefixes)}
    for callback in callbacks:  # what reached the logger is what each callback computed, and a fraction
        assert callback.last and all(logged[k] == pytest.approx(v) for k, v in callback.last.items())
    assert all(0 <= v <= 1 for v in logged.values())
    assert {"downstream/svm_50_mean", "downstream/mlp_mean", "downstream/mlp_std"} <= keys
    assert {"probe_t/linear_t0.00", "probe_t/linear_t0.50", "probe_t/linear_t1.00", "probe_t/svm_50_joined",
            "probe_t/linear_joined"} <= keys
    assert any(p.name.startswith("probe_against_t") for p in (tmp_path / "images").iterdir())
    tables = {p.name.split("_")[0] for p in tmp_path.rglob("*.table.json")}
    assert {"semi", "probe"} <= tables, tables  # tables/semi_supervised, tables/probe_against_t


def test_the_time_probe_skips_a_static_code(tmp_path):
    model = make_drl(code={"latent_dim": 4})
    probe = TimeCodeProbe(grid=2, max_train=100, max_test=50)
    trainer = quiet_trainer(tmp_path, max_steps=1, callbacks=[probe])
    trainer.fit(model, datamodule=digits(subset=128))
    assert probe.last == {}


def test_the_time_dependent_code_differs_across_t(tmp_path):
    model = make_drl(code={"latent_dim": 4, "time_dependent": True})
    data = digits(subset=64)
    data.setup()
    images = torch.stack([data.splits["test"][i][0] for i in range(8)])
    low, high = model.encode(images, times=[0.0]), model.encode(images, times=[1.0])
    assert low.shape == high.shape == (8, 4)
    assert not torch.allclose(low, high)


def train_weights(tmp_path, with_probe: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = make_drl(code={"latent_dim": 4}, ema={"decay": 0.9})
    callbacks = [OnlineLinearProbe(every_n_steps=2)] if with_probe else []
    trainer = quiet_trainer(tmp_path, max_steps=6, callbacks=callbacks, logger=CSVLogger(str(tmp_path), name="csv"),
                            log_every_n_steps=1)
    torch.manual_seed(0)
    trainer.fit(model, datamodule=digits(subset=256, batch_size=32))
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_online_probe_logs_accuracy_and_leaves_the_method_bit_identical(tmp_path):
    without = train_weights(tmp_path / "a", with_probe=False)
    with_probe = train_weights(tmp_path / "b", with_probe=True)
    assert without.keys() == with_probe.keys()
    for key in without:
        assert torch.equal(without[key], with_probe[key]), key
    keys, rows = logged_keys(tmp_path / "b")
    accuracies = [float(r["probe/online_accuracy"]) for r in rows if r.get("probe/online_accuracy")]
    assert "probe/online_loss" in keys and len(accuracies) >= 3  # what it learns: the test below


class PixelCodes(L.LightningModule):
    """A stand-in method whose code is the image itself (digits' pixels carry the class)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return x.flatten(1)

    def training_step(self, batch, batch_idx):
        return (self.dummy**2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_the_online_probe_learns_the_classes_a_code_carries(tmp_path):
    """On codes that carry the label, the untrained head scores about chance (0.1) on its first
    batch and, 120 batches later, nearly the whole batch (8x8 digits)."""
    accuracy = {}
    for steps, every in ((1, 1), (120, 20)):
        trainer = quiet_trainer(tmp_path / str(steps), max_steps=steps,
                                callbacks=[OnlineLinearProbe(every_n_steps=every, lr=1e-2)])
        trainer.fit(PixelCodes(), datamodule=digits(batch_size=32))
        accuracy[steps] = float(trainer.callback_metrics["probe/online_accuracy"])
    assert accuracy[1] < 0.3 and accuracy[120] > 0.9, accuracy



def test_the_online_probe_learns_and_its_state_resumes():
    probe = OnlineLinearProbe(every_n_steps=1000, lr=1e-2)
    codes = torch.randn(2, 6) * 3
    labels = torch.tensor([0, 1])

    class Module:
        device = torch.device("cpu")

        def encode(self, x):
            return codes[x]

        def log(self, *args, **kwargs):
            pass

    class Trainer:
        global_step = 1
        datamodule = type("D", (), {"class_names": ("a", "b")})()

    for _ in range(30):
        idx = torch.randint(0, 2, (16,))
        probe.on_train_batch_end(Trainer(), Module(), None, (idx, labels[idx]), 0)
    assert (probe.head.eval()(codes).argmax(1) == labels).all()
    restored = OnlineLinearProbe()
    restored.load_state_dict(probe.state_dict())
    restored._build(6, 2, torch.device("cpu"))
    assert torch.equal(restored.head[1].weight, probe.head[1].weight)


def test_probe_codes_are_encoded_without_augmentation():
    data = digits(subset=64, flip=True)
    data.setup()
    model = make_drl(code={"latent_dim": 4})
    assert data.splits["train"].flip and not data.evaluation_split("train").flip
    torch.manual_seed(1)
    first, _ = encode_split(model, data.evaluation_split("train"), 64)
    torch.manual_seed(2)
    second, _ = encode_split(model, data.evaluation_split("train"), 64)
    assert torch.equal(first, second)


def test_fashion_mnist_names_its_classes_in_the_latent_plot_and_the_per_class_table(tmp_path, monkeypatch):
    assert FashionMNISTDataModule.class_names[:2] == ("T-shirt/top", "Trouser")
    assert len(FashionMNISTDataModule.class_names) == 10
    monkeypatch.setenv("WANDB_MODE", "offline")
    data = digits(subset=256)
    data.class_names = tuple(f"digit-{d}" for d in range(10))
    model = make_drl(code={"latent_dim": 2})
    callbacks = [LinearProbe(max_train=200, max_test=100), LatentPlot(max_test=100)]
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="t")
    trainer = quiet_trainer(tmp_path, max_steps=1, logger=logger, callbacks=callbacks, log_every_n_steps=1)
    trainer.fit(model, datamodule=data)
    wandb.finish()
    tables = [p for p in tmp_path.rglob("*.table.json") if "per_class" in p.name]
    assert tables and "digit-3" in tables[0].read_text()
