"""The real entry point, as a user runs it: console script, config file, clear errors."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from diffrep.cli import main

ENV = {**os.environ, "WANDB_MODE": "disabled"}


def print_config(*args, cwd, capsys, monkeypatch) -> str:
    """``diffrep ... --print_config`` in this process (a subprocess costs ~10 s of imports):
    the composed config as printed; fails the test unless the CLI exits with 0."""
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as exited:
        main([*args, "--print_config"])
    out = capsys.readouterr()
    assert exited.value.code in (0, None), out.err[-2000:]
    return out.out


def diffrep(*args, cwd):
    exe = shutil.which("diffrep") or sys.executable
    cmd = [exe, *args] if exe.endswith("diffrep") else [exe, "-m", "diffrep.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


def test_print_config_shows_the_model_class(tmp_path):
    out = diffrep("fit", "--config", str(REPO / "configs/dpm.yaml"), "--print_config", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "diffrep.lightning_modules.DPM" in out.stdout and "base_channels: 16" in out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="needs dataset-fashion-mnist")
def test_two_step_fit_of_the_main_config_writes_a_checkpoint_and_grid(tmp_path):
    out = diffrep(
        "fit", "--config", str(REPO / "configs/dpm.yaml"), "--trainer.max_steps", "2",
        "--trainer.logger", str(REPO / "configs/logger/csv.yaml"), "--trainer.limit_val_batches", "1",
        "--data.init_args.num_workers", "0", cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "runs/dpm/checkpoints/last.ckpt").is_file()
    assert list((tmp_path / "runs/dpm/images").glob("samples_*.png"))


def test_missing_data_gives_one_clear_error_and_exit_2(tmp_path):
    out = diffrep(
        "fit", "--config", str(REPO / "configs/dpm.yaml"), "--data", "diffrep.datamodules.MNISTDataModule",
        "--data.root", str(tmp_path), "--trainer.max_steps", "1", "--trainer.logger", "false", cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "diffrep: error:" in out.stderr and "not found" in out.stderr and "Traceback" not in out.stderr


def test_unknown_config_key_is_refused(tmp_path):
    out = diffrep(
        "fit", "--config", str(REPO / "configs/dpm.yaml"), "--model.init_args.learning_rate", "1", cwd=tmp_path
    )
    assert out.returncode == 2 and "learning_rate" in out.stderr


SHIPPED = sorted(
    str(p.relative_to(REPO / "configs"))
    for p in [*(REPO / "configs").glob("*.yaml"), *(REPO / "configs/baselines").glob("*.yaml")]
)


@pytest.mark.parametrize("config", SHIPPED)
def test_every_shipped_config_parses(config, tmp_path, capsys, monkeypatch):
    printed = print_config(
        "fit", "--config", str(REPO / "configs" / config), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert "class_path: diffrep.lightning_modules." in printed


def test_pdae_without_its_dpm_names_the_stage_1_command(tmp_path):
    out = diffrep("fit", "--config", str(REPO / "configs/pdae.yaml"), "--trainer.logger", "false", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "configs/dpm.yaml" in out.stderr and "dpm_checkpoint" in out.stderr


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="needs dataset-fashion-mnist")
def test_pdae_config_fits_on_a_given_dpm_and_draws_its_grids(tiny_dpm_checkpoint, tmp_path):
    out = diffrep(
        "fit",
        "--config",
        str(REPO / "configs/pdae.yaml"),
        "--model.init_args.dpm_checkpoint",
        str(tiny_dpm_checkpoint),
        "--data.init_args.image_size",
        "16",
        "--data.init_args.num_workers",
        "0",
        "--trainer.max_steps",
        "3",
        "--trainer.logger",
        "false",
        "--trainer.limit_val_batches",
        "1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    images = tmp_path / "runs/pdae/images"
    for key in ("reconstructions", "interpolations", "manipulations"):
        assert list(images.glob(f"{key}_*.png")), key


EVAL_CONFIGS = sorted(p.name for p in (REPO / "configs/eval").glob("*.yaml"))


@pytest.mark.parametrize("eval_config", EVAL_CONFIGS)
def test_every_evaluation_config_composes_with_a_method_config(eval_config, tmp_path, capsys, monkeypatch):
    printed = print_config(
        "test",
        "--config",
        str(REPO / "configs/pdae.yaml"),
        "--config",
        str(REPO / "configs/eval" / eval_config),
        cwd=tmp_path,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert "diffrep.callbacks.FID" in printed and "ManipulationGrid" not in printed
