"""Faults a long run meets: SIGKILL mid-epoch, SIGTERM, a kill while a checkpoint is written,
NaN batches, and the bad inputs that must end with one clear message and exit code 2."""

import os
import shutil
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch
from conftest import REPO, digits, quiet_trainer, run_cli, write_tiny_autoencoder_config
from lightning.pytorch.callbacks import ModelCheckpoint
from test_cli import ENV
from test_dpm import make_dpm

from diffrep.checkpoints import CheckpointError
from diffrep.lightning_modules.api import NonFiniteLossError
from diffrep.reliability import AtomicCheckpointIO, FinalLastCheckpoint, NonFiniteGuard

SCRIPT = str(REPO / "tests/scripts/fault_fit.py")


def fit(out, max_steps, *flags):
    return subprocess.run([sys.executable, SCRIPT, str(out), str(max_steps), *flags], env=ENV,
                          capture_output=True, text=True, timeout=600)


def final_weights(out):
    return torch.load(out / "final.pt")["state_dict"]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    out = tmp_path_factory.mktemp("unbroken")
    result = fit(out, 30)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def resume_and_compare(out, unbroken):
    resumed = fit(out, 30, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_weights(final_weights(out), final_weights(unbroken))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_reaches_the_unbroken_weights(unbroken, tmp_path):
    """Killed at step 13 (last checkpoint: step 10, mid-epoch of 43 steps); resuming redoes
    steps 11-30 and ends bit-identical to the unbroken run (model, EMA)."""
    killed = fit(tmp_path, 30, "--kill-at", "13")
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "final.pt").exists()
    assert torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 10
    resume_and_compare(tmp_path, unbroken)


@pytest.mark.slow
def test_sigterm_saves_at_that_step_and_resume_matches(unbroken, tmp_path):
    stopped = fit(tmp_path, 30, "--sigterm-at", "12")
    assert "saved" in stopped.stdout and "step 12" in stopped.stdout, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 12
    resume_and_compare(tmp_path, unbroken)


@pytest.mark.slow
def test_same_seed_and_config_give_the_same_weights_in_a_new_process(unbroken, tmp_path):
    assert fit(tmp_path, 30).returncode == 0
    assert_same_weights(final_weights(tmp_path), final_weights(unbroken))


_SLOW_SAVE = """
import sys, time, torch
from diffrep.reliability import AtomicCheckpointIO

class Slow:
    def __reduce__(self):
        open(sys.argv[2], "w").close()  # tell the test we are inside the write
        time.sleep(60)
        return (int, (0,))

io = AtomicCheckpointIO()
io.save_checkpoint({"step": 1, "w": torch.ones(3)}, sys.argv[1])
io.save_checkpoint({"step": 2, "w": torch.zeros(3), "slow": Slow()}, sys.argv[1])
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    target, inside = tmp_path / "last.ckpt", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(target), str(inside)], env=ENV)
    deadline = time.time() + 120
    while not inside.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert inside.exists(), "the writer never reached the second save"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert AtomicCheckpointIO().load_checkpoint(target)["step"] == 1


def test_a_corrupt_checkpoint_names_the_others_beside_it(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, tmp_path / "step5.ckpt")
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 not a whole checkpoint")
    with pytest.raises(CheckpointError, match="step5.ckpt"):
        io.load_checkpoint(tmp_path / "last.ckpt")


class PoisonAt(L.Callback):
    def __init__(self, steps):
        self.steps = set(steps)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step in self.steps:
            batch[0][0] = float("nan")


def test_a_nan_batch_stops_the_run_naming_the_step_and_last_checkpoint(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpts", save_last=True, every_n_train_steps=3)
    trainer = quiet_trainer(
        tmp_path, max_steps=10, enable_checkpointing=True, callbacks=[PoisonAt([5]), NonFiniteGuard(), ckpt]
    )
    model = make_dpm()
    stopped = r"at step 5; that step changed no weight\. Last good checkpoint: .*(last\.ckpt|step=3)"
    with pytest.raises(NonFiniteLossError, match=stopped):
        trainer.fit(model, datamodule=digits())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_batches_can_be_skipped_up_to_a_limit(tmp_path):
    guard = NonFiniteGuard(max_skips=2)
    model = make_dpm()
    with pytest.warns(UserWarning, match="non-finite gradient at step 3: step skipped") as caught:
        quiet_trainer(tmp_path, max_steps=10, callbacks=[PoisonAt([3, 6]), guard]).fit(model, datamodule=digits())
    assert sum("step skipped" in str(w.message) for w in caught) == 2
    assert guard.skipped == 2 and all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(NonFiniteLossError, match="after skipping 1 steps"), pytest.warns(UserWarning, match="(1/1)"):
        quiet_trainer(tmp_path, max_steps=10, callbacks=[PoisonAt([2, 4]), NonFiniteGuard(max_skips=1)]).fit(
            make_dpm(), datamodule=digits()
        )


def last_step(folder, name="last.ckpt"):
    return torch.load(folder / name, weights_only=False)["global_step"]


def test_last_ckpt_holds_the_final_step_when_max_steps_is_off_the_checkpoint_interval(tmp_path):
    """Lightning alone leaves last.ckpt at step 4 of 6 (it saves last only beside the every-4-steps
    checkpoint); FinalLastCheckpoint brings it to 6 and leaves an earlier run's last.ckpt alone."""
    def run(folder, *extra):
        checkpoint = ModelCheckpoint(dirpath=folder, every_n_train_steps=4, save_last=True, save_top_k=-1)
        quiet_trainer(tmp_path, max_steps=6, enable_checkpointing=True, callbacks=[checkpoint, *extra]).fit(
            make_dpm(), datamodule=digits(batch_size=32))

    run(tmp_path / "lightning")
    assert last_step(tmp_path / "lightning") == 4
    run(tmp_path / "diffrep", FinalLastCheckpoint())
    assert last_step(tmp_path / "diffrep") == 6 and last_step(tmp_path / "diffrep", "epoch=0-step=4.ckpt") == 4
    earlier = (tmp_path / "diffrep/last.ckpt").read_bytes()
    with pytest.warns(UserWarning, match="belongs to another run"):  # a second run into the same folder
        run(tmp_path / "diffrep", FinalLastCheckpoint())
    assert (tmp_path / "diffrep/last.ckpt").read_bytes() == earlier
    assert last_step(tmp_path / "diffrep", "last-v1.ckpt") == 6


def test_diffrep_fit_writes_last_ckpt_at_the_final_step(tmp_path, capsys, monkeypatch):
    config = write_tiny_autoencoder_config(tmp_path / "tiny.yaml", tmp_path / "run", max_steps=3)
    config.write_text(config.read_text().replace("save_top_k: 0}", "save_top_k: -1, every_n_train_steps: 2}"))
    assert run_cli("fit", "--config", config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    assert last_step(tmp_path / "run/checkpoints") == 3


@pytest.fixture()
def tiny_config(tmp_path):
    return write_tiny_autoencoder_config(tmp_path / "tiny.yaml", tmp_path / "run", max_steps=3)


def bad_input_cases(tmp_path, config):
    """(name, extra arguments, text the message must contain); each must exit 2 without a traceback."""
    gz = tmp_path / "fashion"
    gz.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        import gzip

        with gzip.open(gz / name, "wb") as f:
            f.write(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3 + b"short")
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    return [
        ("a value of the wrong type", ["--trainer.max_steps", "many"], "max_steps"),
        (
            "a corrupt IDX file",
            [
                "--data",
                "diffrep.datamodules.FashionMNISTDataModule",
                "--data.root",
                str(gz),
                "--model.init_args.image_shape",
                "[1, 32, 32]",
            ],
            "corrupt",
        ),
        ("a GPU request on a machine without one", ["--trainer.accelerator", "cuda"], "CUDA"),
        ("an unreadable checkpoint to resume", ["--ckpt_path", str(tmp_path / "broken.ckpt")], "unreadable"),
        ("a missing checkpoint to resume", ["--ckpt_path", str(tmp_path / "nowhere.ckpt")], "does not exist"),
        ("--ckpt_path last with nothing to resume", ["--ckpt_path", "last"], "has no last.ckpt to resume"),
        ("a mistyped model value", ["--model.init_args.kl_weight", "abc"],
         "--model.init_args.kl_weight: expected a float, got 'abc'"),
        ("a mistyped trainer value", ["--trainer.max_steps", "many"],
         "--trainer.max_steps: expected an int, got 'many'"),
        ("a setting the model does not have", ["--model.init_args.latent_dimm", "3"], "has no setting 'latent_dimm'"),
    ]


def test_bad_inputs_end_with_one_message_and_exit_2(tiny_config, tmp_path, capsys, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("the GPU-request case needs a machine without a GPU")
    for name, extra, text in bad_input_cases(tmp_path, tiny_config):
        code, _, err = run_cli("fit", "--config", tiny_config, *extra, cwd=tmp_path, capsys=capsys,
                               monkeypatch=monkeypatch)
        assert code == 2, (name, err[-1500:])
        assert text in err, (name, err[-1500:])
        if name.startswith(("a mistyped", "a setting", "--ckpt_path last")):  # one line, not a screen of Union subtypes
            assert len(err.strip().splitlines()) == 1, (name, err)
    assert not (tmp_path / "run/checkpoints").exists()  # no case trained (--ckpt_path last would have, from step 0)


def test_a_second_fresh_fit_into_a_folder_with_last_ckpt_is_refused(tiny_config, tmp_path, capsys, monkeypatch):
    """Lightning would write last-v1.ckpt beside the old last.ckpt, which later stages keep reading."""
    assert run_cli("fit", "--config", tiny_config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    before = (tmp_path / "run/checkpoints/last.ckpt").read_bytes()
    code, _, err = run_cli("fit", "--config", tiny_config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "already holds last.ckpt" in err and "--ckpt_path last" in err, err[-1500:]
    assert (tmp_path / "run/checkpoints/last.ckpt").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == ["last.ckpt"]


def test_resuming_with_another_latent_size_says_which_setting_differs(tiny_config, tmp_path, capsys, monkeypatch):
    assert run_cli("fit", "--config", tiny_config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    code, _, err = run_cli(
        "fit", "--config", tiny_config, "--model.init_args.latent_dim", "16", "--trainer.max_steps", "6",
        "--ckpt_path", "last", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch,
    )
    assert code == 2 and "other model settings" in err and "latent_dim" in err


def test_wandb_online_without_credentials_falls_back_to_offline(monkeypatch, tmp_path):
    from jsonargparse import Namespace

    from diffrep.cli import force_wandb_offline_without_credentials

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    logger = Namespace(class_path="lightning.pytorch.loggers.WandbLogger", init_args={"offline": False, "project": "p"})
    with pytest.warns(UserWarning, match="wandb login"):
        force_wandb_offline_without_credentials(logger)
    assert logger.init_args["offline"] is True
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    logger.init_args["offline"] = False
    force_wandb_offline_without_credentials([logger])
    assert logger.init_args["offline"] is False


def test_a_bug_that_raises_a_builtin_error_keeps_its_traceback(tiny_config, tmp_path, capsys, monkeypatch):
    """Only diffrep's own errors (a user can fix them) become one line and exit 2; a ValueError or
    FileNotFoundError from a bug inside a run propagates (the console script prints its traceback)."""
    from diffrep.lightning_modules.baselines import Autoencoder

    for error in (ValueError("a bug"), FileNotFoundError("a bug's missing file")):
        def broken(self, *args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(Autoencoder, "training_step", broken)
        with pytest.raises(type(error), match="a bug"):
            run_cli("fit", "--config", tiny_config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
        shutil.rmtree(tmp_path / "run", ignore_errors=True)


def test_user_errors_are_diffreps_own_and_still_builtin_types():
    from diffrep.datamodules.base import DataError
    from diffrep.errors import ConfigError, DiffrepError, MissingFileError

    for cls, builtin in ((ConfigError, ValueError), (MissingFileError, FileNotFoundError),
                         (CheckpointError, FileNotFoundError), (DataError, RuntimeError),
                         (NonFiniteLossError, RuntimeError)):
        assert issubclass(cls, DiffrepError) and issubclass(cls, builtin), cls
    from diffrep.cli import USER_ERRORS

    assert ValueError not in USER_ERRORS and FileNotFoundError not in USER_ERRORS


def test_a_truncated_dpm_checkpoint_for_pdae_gives_one_line(tmp_path, capsys, monkeypatch):
    """jsonargparse wraps an error raised while building the model in a Union message with the
    whole Namespace; the user sees diffrep's one line instead."""
    from test_fault_matrix import PDAE_CONFIG

    (tmp_path / "truncated.ckpt").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    config = tmp_path / "pdae.yaml"
    config.write_text(PDAE_CONFIG.format(dpm=tmp_path / "truncated.ckpt", root=tmp_path / "pdae"))
    code, _, err = run_cli("fit", "--config", config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Seed set")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("diffrep: error: cannot read checkpoint"), err


def test_checkpoints_follow_the_run_folder(tiny_config, tmp_path, capsys, monkeypatch):
    """A ModelCheckpoint without dirpath (as every shipped config) writes into <default_root_dir>/checkpoints,
    so a second run with another --trainer.default_root_dir is not refused because of the first one."""
    tiny_config.write_text(tiny_config.read_text().replace(f"dirpath: {tmp_path}/run/checkpoints, ", ""))
    assert "dirpath" not in tiny_config.read_text()
    for folder in ("first", "second"):
        code, _, err = run_cli("fit", "--config", tiny_config, "--trainer.default_root_dir", tmp_path / folder,
                               cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
        assert code == 0, err[-1500:]
        assert last_step(tmp_path / folder / "checkpoints") == 3
        assert (tmp_path / folder / "metrics.json").is_file()


class Pickled:
    """An object a weights-only load refuses (a checkpoint could run code through such objects)."""


def test_checkpoints_load_weights_only_unless_the_user_trusts_them(tmp_path, monkeypatch, tiny_dpm_checkpoint):
    from diffrep.checkpoints import TRUST_ENV, load_checkpoint_file, read_checkpoint

    assert read_checkpoint(tiny_dpm_checkpoint)["global_step"] == 150  # diffrep's own: weights only is enough
    torch.save({"state_dict": {}, "payload": Pickled()}, tmp_path / "foreign.ckpt")
    for load in (read_checkpoint, AtomicCheckpointIO().load_checkpoint):
        with pytest.raises(CheckpointError, match="--trust_checkpoints true"):
            load(tmp_path / "foreign.ckpt")
    monkeypatch.setenv(TRUST_ENV, "1")
    with pytest.warns(UserWarning, match="can run arbitrary code"):
        assert isinstance(load_checkpoint_file(tmp_path / "foreign.ckpt")["payload"], Pickled)


def test_another_methods_checkpoint_stops_in_one_line_unless_its_class_is_named(tmp_path, capsys, monkeypatch):
    """`diffrep test --config configs/drl.yaml --ckpt_path <a DPM>` ran DRL's whole suite on the DPM."""
    from test_fault_matrix import write_config

    config = write_config(tmp_path / "dpm")
    code, _, err = run_cli("fit", "--config", config, "--trainer.max_steps", "2", cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 0, err[-1500:]
    common = ["--ckpt_path", tmp_path / "dpm/checkpoints/last.ckpt", "--data", REPO / "configs/data/digits.yaml",
              "--trainer.logger", "false", "--evaluate", "false", "--trainer.limit_test_batches", "1",
              "--trainer.default_root_dir", tmp_path / "run"]
    code, _, err = run_cli("test", "--config", REPO / "configs/drl.yaml", *common, cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 2 and "holds a DPM, but the config names a DRL" in err, err[-1500:]
    assert len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("test", "--config", REPO / "configs/drl.yaml", "--model", "diffrep.lightning_modules.DPM",
                           *common, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-2000:]
