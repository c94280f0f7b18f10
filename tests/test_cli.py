"""The real entry point, as a user runs it: console script, config file, clear errors."""

import logging
import os
import shutil
import subprocess
import sys
import warnings

import pytest
from conftest import REPO, run_cli

ENV = {**os.environ, "WANDB_MODE": "disabled"}
FASHION = pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="needs dataset-fashion-mnist"
)


def print_config(*args, cwd, capsys, monkeypatch) -> str:
    """``diffrep ... --print_config`` in this process: the composed config as printed; fails the
    test unless the CLI exits with 0."""
    code, out, err = run_cli(*args, "--print_config", cwd=cwd, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-2000:]
    return out


def diffrep(*args, cwd):
    """The installed console script in a subprocess: for the few end-to-end runs that must be real."""
    exe = shutil.which("diffrep") or sys.executable
    cmd = [exe, *args] if exe.endswith("diffrep") else [exe, "-m", "diffrep.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


def test_print_config_shows_the_model_class(tmp_path, capsys, monkeypatch):
    out = print_config("fit", "--config", REPO / "configs/dpm.yaml", cwd=tmp_path, capsys=capsys,
                       monkeypatch=monkeypatch)
    assert "diffrep.lightning_modules.DPM" in out and "base_channels: 16" in out and "evaluate: true" in out


SMALL_SAMPLE_GRID = """trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {dirpath: runs/dpm/checkpoints, save_last: true}
    - class_path: diffrep.callbacks.SampleGrid
      init_args: {num_steps: 2, num_images: 4}
"""


@FASHION
def test_two_step_fit_of_the_main_config_writes_a_checkpoint_and_grid(tmp_path, capsys, monkeypatch, caplog):
    """... and prints the model summary without Lightning's FLOPs column (0 for every module: no diffrep
    method has an example_input_array) and without its bf16-mixed warning."""
    (tmp_path / "small_grid.yaml").write_text(SMALL_SAMPLE_GRID)
    summary_log = logging.getLogger("lightning.pytorch.callbacks.model_summary")
    summary_log.addHandler(caplog.handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code, _, err = run_cli(
                "fit", "--config", REPO / "configs/dpm.yaml", "--config", tmp_path / "small_grid.yaml",
                "--trainer.max_steps", "2", "--trainer.logger", REPO / "configs/logger/csv.yaml",
                "--trainer.limit_val_batches", "1", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch,
            )
    finally:
        summary_log.removeHandler(caplog.handler)
    assert code == 0, err[-3000:]
    assert "Trainable params" in caplog.text and "FLOPs" not in caplog.text and "Total Flops" not in caplog.text
    assert not [w for w in caught if "not supported by the model summary" in str(w.message)]
    assert (tmp_path / "runs/dpm/checkpoints/last.ckpt").is_file()
    assert list((tmp_path / "runs/dpm/images").glob("samples_*.png"))


@FASHION
def test_evaluate_false_skips_every_evaluation_callback(tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(
        "fit", "--config", REPO / "configs/dpm.yaml", "--trainer.max_steps", "1", "--trainer.logger", "false",
        "--trainer.limit_val_batches", "0", "--evaluate", "false", cwd=tmp_path, capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err[-3000:]
    assert (tmp_path / "runs/dpm/checkpoints/last.ckpt").is_file() and not (tmp_path / "runs/dpm/images").exists()


def test_missing_data_gives_one_clear_error_and_exit_2(tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(
        "fit", "--config", REPO / "configs/dpm.yaml", "--data", "diffrep.datamodules.MNISTDataModule",
        "--data.root", tmp_path, "--trainer.max_steps", "1", "--trainer.logger", "false", cwd=tmp_path,
        capsys=capsys, monkeypatch=monkeypatch,
    )
    assert code == 2
    assert "diffrep: error:" in err and "not found" in err


@pytest.mark.parametrize("data", ["FashionMNISTDataModule", "MNISTDataModule", "CIFAR10DataModule",
                                  "ImageFolderDataModule"])
def test_a_typed_data_root_that_does_not_exist_stops_the_run_with_exit_2(data, tmp_path, capsys, monkeypatch):
    """Never silently replaced by the search list ($DIFFREP_DATA, ./data, /usr/share/datasets)."""
    missing = tmp_path / "no/such/dir"
    code, _, err = run_cli(
        "fit", "--config", REPO / "configs/dpm.yaml", "--data", f"diffrep.datamodules.{data}",
        "--data.root", missing, "--trainer.max_steps", "1", "--trainer.logger", "false", cwd=tmp_path,
        capsys=capsys, monkeypatch=monkeypatch,
    )
    assert code == 2 and f"{missing}" in err and "does not exist" in err
    assert len(err.strip().splitlines()) == 1, err


def test_typed_checkpoint_paths_that_do_not_exist_stop_the_run_with_exit_2(tmp_path, capsys, monkeypatch):
    cases = [
        ("configs/pdae.yaml", "--model.init_args.dpm_checkpoint"),
        ("configs/pdae_latent.yaml", "--model.init_args.model_checkpoint"),
        ("configs/diffae.yaml", "--model.init_args.prior.latent_dpm_checkpoint"),
    ]
    for config, flag in cases:
        missing = tmp_path / "nowhere.ckpt"
        code, _, err = run_cli("fit", "--config", REPO / config, flag, missing, "--trainer.logger", "false",
                               cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
        assert code == 2 and str(missing) in err and "does not exist" in err, (config, err[-1000:])


def test_unknown_config_key_is_refused(tmp_path, capsys, monkeypatch):
    code, _, err = run_cli("fit", "--config", REPO / "configs/dpm.yaml", "--model.init_args.learning_rate", "1",
                           cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "learning_rate" in err


SHIPPED = sorted(
    str(p.relative_to(REPO / "configs"))
    for p in [*(REPO / "configs").glob("*.yaml"), *(REPO / "configs/baselines").glob("*.yaml"),
              *(REPO / "configs/recipes").glob("*.yaml")]
)


@pytest.mark.parametrize("config", SHIPPED)
def test_every_shipped_config_parses(config, tmp_path, capsys, monkeypatch):
    printed = print_config(
        "fit", "--config", str(REPO / "configs" / config), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert "class_path: diffrep.lightning_modules." in printed


def test_pdae_without_its_dpm_names_the_stage_1_command(tmp_path, capsys, monkeypatch):
    code, _, err = run_cli("fit", "--config", REPO / "configs/pdae.yaml", "--trainer.logger", "false", cwd=tmp_path,
                           capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "configs/dpm.yaml" in err and "dpm_checkpoint" in err


GRIDS_ONLY = """trainer:
  callbacks:
    - class_path: diffrep.callbacks.ReconstructionGrid
      init_args: {num_steps: 3, num_images: 4}
    - class_path: diffrep.callbacks.InterpolationGrid
      init_args: {num_steps: 3, num_rows: 1, num_points: 3}
    - class_path: diffrep.callbacks.ManipulationGrid
      init_args: {num_steps: 3, num_images: 2, positive_class: 1, num_codes: 200, inversion_steps: 4}
"""


def test_pdae_config_fits_on_a_given_dpm_and_draws_its_grids(tiny_dpm_checkpoint, tmp_path, capsys, monkeypatch):
    (tmp_path / "grids.yaml").write_text(GRIDS_ONLY)
    code, _, err = run_cli(
        "fit", "--config", REPO / "configs/pdae.yaml", "--config", tmp_path / "grids.yaml",
        "--model.init_args.dpm_checkpoint", tiny_dpm_checkpoint, "--data", REPO / "configs/data/digits.yaml",
        "--data.init_args.image_size", "16", "--trainer.max_steps", "3", "--trainer.logger", "false",
        "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", tmp_path / "runs/pdae",
        cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch,
    )
    assert code == 0, err[-3000:]
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
    evaluates = "diffrep.callbacks.FID" in printed or "diffrep.callbacks.SemiSupervisedProbe" in printed
    assert evaluates and "ManipulationGrid" not in printed


def test_the_recipe_trains_in_bf16_for_a_60_minute_training_clock(tmp_path, capsys, monkeypatch):
    import yaml

    printed = yaml.safe_load(print_config("fit", "--config", REPO / "configs/recipes/best_cpu_hour.yaml",
                                          cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch))
    assert printed["trainer"]["precision"] == "bf16-mixed"
    budget = [c["init_args"] for c in printed["trainer"]["callbacks"] if c["class_path"].endswith("TimeToAccuracy")]
    assert budget and budget[0]["budget_minutes"] == 60
    assert printed["model"]["class_path"] == "diffrep.lightning_modules.DRL"


def test_bf16_on_a_cpu_without_native_bf16_trains_in_fp32_unless_asked_to_emulate(tmp_path, capsys, monkeypatch):
    import yaml
    from conftest import write_tiny_autoencoder_config

    import diffrep.cli

    monkeypatch.setattr(diffrep.cli, "runs_on_cpu", lambda accelerator: True)
    cases = [(False, [], "32-true", 1), (False, ["--emulated_bf16", "true"], "bf16-mixed", 0),
             (True, [], "bf16-mixed", 0)]
    for case, (native, extra, precision, expected_warnings) in enumerate(cases):
        run_dir = tmp_path / f"run_{case}"
        config = write_tiny_autoencoder_config(tmp_path / "ae.yaml", run_dir, max_steps=1)
        monkeypatch.setattr(diffrep.cli, "cpu_has_fast_bf16", lambda native=native: native)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code, _, err = run_cli("fit", "--config", config, "--trainer.precision", "bf16-mixed", *extra,
                                   cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
        assert code == 0, err[-2000:]
        hits = [w for w in caught if "no native bf16" in str(w.message)]
        assert len(hits) == expected_warnings and (not hits or "--emulated_bf16 true" in str(hits[0].message))
        saved = yaml.safe_load(next(run_dir.rglob("config.yaml")).read_text())  # what the run used
        assert saved["trainer"]["precision"] == precision, case


def test_runs_on_cpu_reads_the_accelerator_setting():
    import torch

    from diffrep.cli import runs_on_cpu

    assert runs_on_cpu("cpu") and not runs_on_cpu("gpu") and not runs_on_cpu("cuda")
    assert runs_on_cpu("auto") == (not torch.cuda.is_available() and not torch.backends.mps.is_available())


def test_the_lightning_command_runs_diffrep_and_passes_the_rest_to_lightning(tmp_path, capsys, monkeypatch):
    """`lightning fit --config ...` is diffrep's; `lightning run ...` (and the older `run model`) and
    `lightning consolidate` reach Lightning's own command line, which diffrep's script replaced."""
    from conftest import write_tiny_autoencoder_config

    from diffrep.cli import lightning_main

    config = write_tiny_autoencoder_config(tmp_path / "tiny.yaml", tmp_path / "run", max_steps=2)
    monkeypatch.chdir(tmp_path)
    lightning_main(["fit", "--config", str(config)])
    assert (tmp_path / "run/checkpoints/last.ckpt").is_file()
    for args, text in ((["run", "--help"], "Run a Lightning Fabric script"),
                       (["run", "model", "--help"], "Run a Lightning Fabric script"),
                       (["consolidate", "--help"], "checkpoint")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            lightning_main(args)
        out = capsys.readouterr().out
        assert exited.value.code == 0 and text in out and "Usage: lightning" in out, (args, out)


def test_help_lists_every_diffrep_subcommand_prepare_included(tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli("--help", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    for subcommand in ("fit", "validate", "test", "predict", "prepare"):
        assert subcommand in out, subcommand
    code, out, err = run_cli("prepare", "--help", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "LitData" in out + err


def test_an_integer_limit_typed_on_the_command_line_stays_an_integer(tmp_path, capsys, monkeypatch):
    """jsonargparse parsed `--trainer.limit_val_batches 1` as 1.0, which Lightning reads as every batch."""
    from diffrep import cli

    assert cli.integers_as_typed(["--trainer.limit_val_batches", "1", "--trainer.val_check_interval=0.25",
                                  "--trainer.limit_train_batches", "3", "--trainer.limit_train_batches", "0.5"]) == \
        {"limit_val_batches": 1}
    seen = {}
    original = cli.DiffrepCLI.instantiate_trainer

    def capture(self, **kwargs):
        trainer = original(self, **kwargs)
        seen.update(limit=trainer.limit_val_batches, interval=trainer.val_check_interval)
        raise SystemExit(0)

    monkeypatch.setattr(cli.DiffrepCLI, "instantiate_trainer", capture)
    code, _, err = run_cli("fit", "--config", REPO / "configs/dpm.yaml", "--trainer.limit_val_batches", "1",
                           "--trainer.val_check_interval", "7", "--trainer.logger", "false", cwd=tmp_path,
                           capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-1500:]
    assert seen == {"limit": 1, "interval": 7} and type(seen["limit"]) is int
