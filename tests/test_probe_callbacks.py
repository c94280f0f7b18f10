import csv

import pytest
import torch
from conftest import digits, linear_probe_again, quiet_trainer
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from test_drl import make

from diffrep.callbacks import (
    FID,
    EvaluationCallback,
    FewLabelProbe,
    InterpolationGrid,
    LatentPlot,
    LinearProbe,
    ReconstructionGrid,
    ReconstructionMetrics,
    SampleGrid,
)
from diffrep.datamodules.digits import DigitsDataModule
from diffrep.diffusion.schedule import ScheduleConfig
from diffrep.errors import ConfigError
from diffrep.evaluation.extractor import SmallClassifier, save_classifier


def test_every_callback_runs_in_a_two_epoch_fit_and_writes_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    model = make(code={"latent_dim": 2}, ema={"decay": 0.9})
    save_classifier(SmallClassifier(width=8, feature_dim=16), tmp_path / "extractor.pt")
    callbacks = [
        LinearProbe(max_train=400, max_test=200),
        FewLabelProbe(labels_per_class=(1, 5), seeds=(0, 1), max_train=400, max_test=200),
        LatentPlot(max_test=200),
        SampleGrid(num_steps=3, num_images=4),
        ReconstructionGrid(num_steps=3, num_images=4),
        InterpolationGrid(num_steps=3, num_rows=1, num_points=3),
        ReconstructionMetrics(num_images=16, num_steps=3),
        FID(num_images=32, num_steps=3, weights_path=str(tmp_path / "extractor.pt")),
    ]
    loggers = [CSVLogger(str(tmp_path), name="csv"), WandbLogger(save_dir=str(tmp_path), offline=True, project="test")]
    trainer = quiet_trainer(tmp_path, max_epochs=2, logger=loggers, callbacks=callbacks, log_every_n_steps=1)
    model.train()
    data = digits(subset=256)
    trainer.fit(model, datamodule=data)
    assert model.training  # the callbacks restored the mode they found
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    logged = {k for r in rows for k, v in r.items() if v}
    for key in (
        "probe/linear_accuracy",
        "probe/knn_accuracy",
        "probe/few_label_1_mean",
        "probe/few_label_5_std",
        "recon/inverted_ssim",
        "recon/random_mse",
        "fid/samples",
        "fid/reconstructions",
    ):
        assert key in logged, key
    accuracy = [float(r["probe/linear_accuracy"]) for r in rows if r.get("probe/linear_accuracy")]
    assert len(accuracy) == 2, accuracy  # the first epoch's end and fit end (the last epoch's end is fit end)
    # the fit-end number is the probe of the codes fit left (the validation split during fit), computed again:
    # 8 steps teach this DRL nothing a probe sees (measured: 21.9% trained and untrained), so no bound on it
    assert accuracy[-1] == pytest.approx(linear_probe_again(model, data, "val", 400, 200))
    images = {p.name.split("_step")[0] for p in (tmp_path / "images").glob("*.png")}
    assert images == {"latent_plot", "samples", "reconstructions", "interpolations"}
    assert list(tmp_path.rglob("offline-run-*"))  # W&B wrote its offline run
    tables = {p.name.split("_")[0] for p in tmp_path.rglob("*.table.json")}
    assert {"LinearProbe", "FewLabelProbe", "FID", "ReconstructionMetrics"} <= tables, tables
    assert torch.isfinite(model.code_mean).all()
    fids = [float(r["fid/samples"]) for r in rows if r.get("fid/samples")]
    assert len(fids) == 2 and all(f > 0 for f in fids)


def test_a_step_schedule_probes_every_n_optimizer_steps_once(tmp_path):
    """every_n_steps=4 over 10 steps with 2 batches per step: steps 4 and 8, then fit end (10)."""
    model = make(code={"latent_dim": 2})
    probe = LinearProbe(every_n_epochs=100, every_n_steps=4, max_train=200, max_test=100)
    trainer = quiet_trainer(
        tmp_path,
        max_steps=10,
        accumulate_grad_batches=2,
        logger=CSVLogger(str(tmp_path), name="csv"),
        callbacks=[probe],
        log_every_n_steps=1,
    )
    trainer.fit(model, datamodule=digits(subset=256, batch_size=16))
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("probe/linear_accuracy")]
    assert steps == [4, 8, 10]


class GridRecorder(EvaluationCallback):
    def evaluate(self, trainer, pl_module, stage):
        self.seen = (pl_module.timestep_grid, pl_module.schedule.sampling_times(10, pl_module.timestep_grid).tolist())
        return {}


def test_an_evaluation_callback_decodes_on_its_own_timestep_grid_and_restores_the_models(tmp_path):
    model = make(code={"latent_dim": 2})
    model.schedule = ScheduleConfig(kind="discrete").build()  # the official grid's integer steps
    recorder = GridRecorder(timestep_grid="official")
    quiet_trainer(tmp_path, max_steps=1, callbacks=[recorder]).fit(model, datamodule=digits(subset=64))
    assert recorder.seen == ("official", [999, 899, 799, 699, 599, 499, 399, 299, 199, 99])
    assert model.timestep_grid == "linspace"
    with pytest.raises(ValueError, match="timestep_grid"):
        GridRecorder(timestep_grid="quadratic")


class StepRecorder(EvaluationCallback):
    def evaluate(self, trainer, pl_module, stage):
        self.steps = [*getattr(self, "steps", []), trainer.global_step]
        return {}


def test_a_fit_that_ends_on_an_epoch_end_is_evaluated_once_at_its_last_step(tmp_path):
    """The last epoch's end and the fit end were two evaluations of one step (W&B stored the final
    sample grid twice); only the fit-end one runs now, after the model's end-of-training work."""
    data = digits(subset=64, batch_size=16)
    data.setup("fit")
    per_epoch = len(data.train_dataloader())
    recorder = StepRecorder(every_n_epochs=1)
    trainer = quiet_trainer(tmp_path, max_steps=2 * per_epoch, callbacks=[recorder])
    trainer.fit(make(code={"latent_dim": 2}), datamodule=data)
    assert recorder.steps == [per_epoch, 2 * per_epoch]
    recorder = StepRecorder(every_n_epochs=2)  # the last epoch is not on the schedule: fit end evaluates it
    trainer = quiet_trainer(tmp_path / "b", max_steps=per_epoch, callbacks=[recorder])
    trainer.fit(make(code={"latent_dim": 2}), datamodule=data)
    assert recorder.steps == [per_epoch]


class SplitSpy:
    """Wraps a datamodule's ``splits`` and ``evaluation_split`` to record which splits are read."""

    def __init__(self, data) -> None:
        data.setup("fit")
        self.read: list[str] = []
        spy, splits, evaluation_split = self, data.splits, data.evaluation_split

        class Recording(dict):
            def __getitem__(self, split):
                spy.read.append(split)
                return super().__getitem__(split)

        data.splits = Recording(splits)
        data.evaluation_split = lambda split: (spy.read.append(split), evaluation_split(split))[1]


def test_fit_time_evaluation_scores_validation_and_only_diffrep_test_reads_the_test_split(tmp_path):
    """Settings are chosen from fit-time curves, so those must never come from the test split."""
    from diffrep.callbacks import SemiSupervisedProbe

    data = digits(subset=128, batch_size=32)
    spy = SplitSpy(data)
    callbacks = [LinearProbe(max_train=100, max_test=50), ReconstructionMetrics(num_images=4, num_steps=2),
                 SemiSupervisedProbe(labels_per_class=(1,), seeds=(0,), methods=("supervised",), max_train=100,
                                     max_test=50)]
    trainer = quiet_trainer(tmp_path, max_steps=2, callbacks=callbacks)
    trainer.fit(make(code={"latent_dim": 2}), datamodule=data)
    assert "val" in spy.read and "test" not in spy.read, spy.read
    assert callbacks[0].last["probe/linear_accuracy"] > 0
    spy.read.clear()
    trainer.test(trainer.lightning_module, datamodule=data, verbose=False)
    assert "test" in spy.read and "val" not in spy.read, spy.read


def test_a_fit_time_probe_without_a_validation_split_names_the_setting(tmp_path):
    data = DigitsDataModule(image_size=16, batch_size=32, val_size=0, subset=64)
    trainer = quiet_trainer(tmp_path, max_steps=1, callbacks=[LinearProbe(max_train=50, max_test=20)])
    with pytest.raises(ConfigError, match="val_size"):
        trainer.fit(make(code={"latent_dim": 2}), datamodule=data)

