"""Pre-emption made boring: real ``diffrep fit`` processes of a tiny DPM are signalled (SIGTERM,
SIGUSR1, SIGKILL) at training steps, during validation and inside a checkpoint save, then resumed
with ``--ckpt_path last`` until ``max_steps``. After each: one ``last.ckpt`` at the final step and
no other ``last*.ckpt``; every step's loss (the interrupted run joined with its resumes) and the
final weights bit-identical to an unbroken run's. Then stage 2 (PDAE) on a pre-empted stage 1
records and says which DPM step it adapts.

The processes are forked from this one (each starts in a second instead of the ~10 s a fresh
interpreter spends importing Lightning) and run the real ``diffrep`` entry point."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_cli
from faults import read_losses

MAX_STEPS = 12

DPM_CONFIG = """
seed_everything: 0
model:
  class_path: diffrep.lightning_modules.DPM
  init_args:
    unet: {{in_channels: 1, image_size: 16, base_channels: 16, channel_mult: [1, 2], num_res_blocks: 1,
           attention_resolutions: [], num_groups: 8}}
    optimisation: {{lr: 2.0e-3, warmup_steps: 3}}
    ema: {{decay: 0.9}}
data:
  class_path: diffrep.datamodules.DigitsDataModule
  init_args: {{image_size: 16, batch_size: 32, val_size: 64}}
trainer:
  default_root_dir: {root}
  max_steps: {max_steps}
  val_check_interval: 5
  check_val_every_n_epoch: null
  limit_val_batches: 2
  num_sanity_val_steps: 0
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {root}/checkpoints, save_last: true, save_top_k: 0, every_n_train_steps: 4}}
    - class_path: faults.LossRecorder
      init_args: {{path: {root}/losses.txt}}
{fault}"""

FAULT = """    - class_path: faults.SignalAt
      init_args: {{step: {step}, signal_name: {signal}, point: {point}, once_file: {root}/signal_sent}}
"""


def write_config(root: Path, fault: tuple[str, int, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = FAULT.format(signal=fault[0], step=fault[1], point=fault[2], root=root) if fault else ""
    config = root / "dpm.yaml"
    config.write_text(DPM_CONFIG.format(root=root, max_steps=MAX_STEPS, fault=text))
    return config


def diffrep_fit(root: Path, *args: str) -> tuple[int, str]:
    """``diffrep fit ARGS`` in a forked process (cwd ``root``): (exit status or -signal, its output)."""
    log = root / f"output-{len(list(root.glob('output-*')))}.txt"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = sys.stderr = open(fd, "w", buffering=1, closefd=False)  # pytest's capture is not fd 1
            os.chdir(root)
            torch.set_num_threads(1)
            from diffrep.cli import main

            main(["fit", *args])
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return code, log.read_text()


def step_of(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


def last_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "checkpoints").glob("last*.ckpt"))


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unbroken")
    code, output = diffrep_fit(root, "--config", str(write_config(root)))
    assert code == 0, output[-3000:]
    return root


def assert_same_run(root: Path, unbroken: Path) -> None:
    """One last.ckpt at the final step; each step's loss and the final weights equal the unbroken run's."""
    assert last_files(root) == ["last.ckpt"], last_files(root)
    assert step_of(root / "checkpoints/last.ckpt") == MAX_STEPS
    losses, reference = read_losses(root / "losses.txt"), read_losses(unbroken / "losses.txt")
    assert sorted(losses) == list(range(1, MAX_STEPS + 1)) == sorted(reference)
    for step, values in reference.items():
        assert losses[step] == values, f"step {step}: {losses[step]} against the unbroken {values}"
    got = torch.load(root / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    want = torch.load(unbroken / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


# (signal, step, where it lands, the step of last.ckpt after the interrupted run)
CASES = [
    ("SIGTERM", 2, "train_step", 2),  # before any periodic save: the issue's reproduction
    ("SIGUSR1", 6, "train_step", 6),
    ("SIGKILL", 7, "train_step", 4),  # the periodic save of step 4 survives
    ("SIGTERM", 5, "validation", 5),  # saved mid-validation; Lightning reruns it on resume
    ("SIGUSR1", 5, "validation", 6),  # the handler's flag is read at the next step's end
    ("SIGKILL", 10, "validation", 8),
    ("SIGKILL", 8, "checkpoint_write", 4),  # killed inside the save of step 8: step 4's file is whole
    ("SIGTERM", 8, "checkpoint_write", 8),
    ("SIGINT", 3, "train_step", 3),  # Ctrl-C: the step finishes, last.ckpt is saved (it was interrupted.ckpt)
    ("SIGINT", 5, "validation", 6),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,step,point,saved_step", CASES, ids=[f"{c[0]}-{c[2]}-{c[1]}" for c in CASES])
def test_a_signal_then_resumes_end_as_the_unbroken_run(name, step, point, saved_step, unbroken, tmp_path):
    config = write_config(tmp_path, (name, step, point))
    code, output = diffrep_fit(tmp_path, "--config", str(config))
    if name == "SIGKILL":
        assert code == -signal.SIGKILL, output[-3000:]
    else:
        assert code == 128 + getattr(signal, name) and f"at step {saved_step}: saved" in output, output[-3000:]
    assert last_files(tmp_path) == ["last.ckpt"] and step_of(tmp_path / "checkpoints/last.ckpt") == saved_step
    code, output = diffrep_fit(tmp_path, "--config", str(config), "--ckpt_path", "last")
    assert code == 0, output[-3000:]
    assert_same_run(tmp_path, unbroken)


@pytest.mark.slow
def test_the_issue_reproduction_keeps_one_last_ckpt_through_two_resumes(unbroken, tmp_path):
    """SIGTERM at step 3, resume to step 8, resume again to 12: last.ckpt follows every segment."""
    config = write_config(tmp_path, ("SIGTERM", 3, "train_step"))
    assert diffrep_fit(tmp_path, "--config", str(config))[0] == 128 + signal.SIGTERM
    code, output = diffrep_fit(tmp_path, "--config", str(config), "--ckpt_path", "last", "--trainer.max_steps", "8")
    assert code == 0 and last_files(tmp_path) == ["last.ckpt"], output[-3000:]
    assert step_of(tmp_path / "checkpoints/last.ckpt") == 8
    assert diffrep_fit(tmp_path, "--config", str(config), "--ckpt_path", "last")[0] == 0
    assert_same_run(tmp_path, unbroken)


@pytest.mark.slow
def test_a_legacy_last_v1_is_taken_over_by_last_ckpt(unbroken, tmp_path):
    """Folders left by the old behaviour (a stale last.ckpt and a newer last-v1.ckpt): resuming
    writes last.ckpt and removes the superseded last-v1.ckpt, saying so."""
    config = write_config(tmp_path)
    assert diffrep_fit(tmp_path, "--config", str(config), "--trainer.max_steps", "6")[0] == 0
    folder = tmp_path / "checkpoints"
    (folder / "last.ckpt").rename(folder / "last-v1.ckpt")
    stale = torch.load(unbroken / "checkpoints/last.ckpt", weights_only=False)
    stale["global_step"] = 2
    torch.save(stale, folder / "last.ckpt")
    os.utime(folder / "last.ckpt", (1, 1))  # older than last-v1.ckpt, as it was
    code, output = diffrep_fit(tmp_path, "--config", str(config), "--ckpt_path", "last")
    assert code == 0 and "removed" in output and "last-v1.ckpt" in output, output[-3000:]
    assert_same_run(tmp_path, unbroken)


def test_resuming_another_runs_checkpoint_into_a_folder_says_it_versions(unbroken, tmp_path, capsys, monkeypatch):
    """A genuinely different run (resumed from a checkpoint elsewhere) does not overwrite this
    folder's last.ckpt; Lightning versions its file, and one line says so."""
    config = write_config(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints/last.ckpt").write_bytes((unbroken / "checkpoints/last.ckpt").read_bytes())
    other = tmp_path / "elsewhere.ckpt"
    other.write_bytes((unbroken / "checkpoints/last.ckpt").read_bytes())
    with pytest.warns(UserWarning, match="belongs to another run"):
        code, _, err = run_cli("fit", "--config", config, "--ckpt_path", other, "--trainer.max_steps", "14",
                               cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-2000:]
    assert last_files(tmp_path) == ["last-v1.ckpt", "last.ckpt"]
    assert step_of(tmp_path / "checkpoints/last.ckpt") == MAX_STEPS
    assert step_of(tmp_path / "checkpoints/last-v1.ckpt") == 14


PDAE_CONFIG = """
seed_everything: 0
model:
  class_path: diffrep.lightning_modules.PDAE
  init_args:
    dpm_checkpoint: {dpm}
    latent_dim: 8
    encoder: {{kind: conv, channels: [16, 32], num_groups: 8, num_heads: 1}}
    optimisation: {{lr: 1.0e-3}}
data:
  class_path: diffrep.datamodules.DigitsDataModule
  init_args: {{image_size: 16, batch_size: 32, val_size: 64}}
trainer:
  default_root_dir: {root}
  max_steps: 2
  limit_val_batches: 0
  logger: false
  enable_progress_bar: false
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {root}/checkpoints, save_last: true, save_top_k: 0}}
"""


@pytest.mark.slow
def test_stage_two_reads_the_resumed_stage_one_and_says_its_step(tmp_path, capsys, monkeypatch):
    """A DPM pre-empted at step 3 and resumed to 12; the PDAE on its last.ckpt records step 12 in
    its checkpoint metadata (and passes it on when loaded as a DPM) and says it in its log."""
    stage1 = tmp_path / "dpm"
    config = write_config(stage1, ("SIGTERM", 3, "train_step"))
    assert diffrep_fit(stage1, "--config", str(config))[0] == 128 + signal.SIGTERM
    assert diffrep_fit(stage1, "--config", str(config), "--ckpt_path", "last")[0] == 0
    dpm = stage1 / "checkpoints/last.ckpt"
    pdae_config = tmp_path / "pdae.yaml"
    pdae_config.write_text(PDAE_CONFIG.format(dpm=dpm, root=tmp_path / "pdae"))
    code, out, err = run_cli("fit", "--config", pdae_config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err[-2000:]
    assert f"frozen DPM of {dpm} (step {MAX_STEPS})" in out
    checkpoint = torch.load(tmp_path / "pdae/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["diffrep"]["dpm"] == {"path": str(dpm), "step": MAX_STEPS}

    from diffrep.checkpoints import load_dpm_with_origin

    assert load_dpm_with_origin(tmp_path / "pdae/checkpoints/last.ckpt")[2]["step"] == MAX_STEPS


def test_the_fault_points_are_checked():
    from faults import SignalAt

    with pytest.raises(ValueError, match="point must be one of"):
        SignalAt(1, "SIGTERM", "somewhere", str(REPO / "unused"))


def test_a_slurm_requeue_with_an_hpc_checkpoint_is_not_refused(tmp_path, monkeypatch):
    """Lightning's SLURM auto-requeue restarts the same command (no --ckpt_path) and resumes from
    its hpc_ckpt_N.ckpt: the refusal of a fresh fit into a folder with last.ckpt must let it through."""
    from conftest import quiet_trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    from diffrep.reliability import refuse_a_folder_with_an_earlier_last_checkpoint

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints/last.ckpt").write_bytes(b"an earlier run")
    keeper = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = quiet_trainer(tmp_path, enable_checkpointing=True, callbacks=[keeper])
    with pytest.raises(ValueError, match="already holds last.ckpt"):
        refuse_a_folder_with_an_earlier_last_checkpoint(trainer)
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    with pytest.raises(ValueError, match="already holds last.ckpt"):  # on SLURM, but no hpc checkpoint
        refuse_a_folder_with_an_earlier_last_checkpoint(trainer)
    (tmp_path / "hpc_ckpt_1.ckpt").write_bytes(b"saved by Lightning's requeue handler")
    refuse_a_folder_with_an_earlier_last_checkpoint(trainer)


PAUSE = """    - class_path: faults.PauseAt
      init_args: {{step: 2, seconds: {seconds}, marker: {root}/paused}}
"""


@pytest.mark.slow
def test_a_second_fit_into_a_running_folder_is_refused_and_the_first_finishes(unbroken, tmp_path, capsys,
                                                                             monkeypatch):
    """Two fits into one run folder both ran, writing the same files; the second now stops on the lock."""
    import time

    config = write_config(tmp_path)
    config.write_text(config.read_text() + PAUSE.format(seconds=8, root=tmp_path))
    first = os.fork()
    if first == 0:  # the first fit, in a child that never returns into pytest
        code = diffrep_fit(tmp_path, "--config", str(config))[0]
        os._exit(code)
    deadline = time.time() + 60
    while not (tmp_path / "paused").exists() and time.time() < deadline:
        time.sleep(0.1)
    holder = (tmp_path / ".diffrep.lock").read_text()
    code, _, err = run_cli("fit", "--config", config, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "is in use by another diffrep fit" in err and '"pid"' in holder, err[-1500:]
    assert str(next(iter(__import__("json").loads(holder).values()))) in err  # the holder's pid is named
    _, status = os.waitpid(first, 0)
    assert os.WEXITSTATUS(status) == 0
    assert not (tmp_path / ".diffrep.lock").exists()  # released on the way out
    assert_same_run(tmp_path, unbroken)  # the first run, untouched by the refused one


def test_a_stale_lock_is_taken_over_and_other_ranks_share_it(tmp_path, capsys, monkeypatch):
    import json
    import subprocess

    from diffrep.reliability import RunFolderLock

    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = RunFolderLock(tmp_path)
    (tmp_path / ".diffrep.lock").write_text(json.dumps({**lock.mine, "pid": dead.pid}))
    assert "took over the stale lock" in lock.acquire()
    assert json.loads((tmp_path / ".diffrep.lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / ".diffrep.lock").exists()
    (tmp_path / ".diffrep.lock").write_text(json.dumps({**lock.mine, "pid": 1}))  # a live process: init
    with pytest.raises(Exception, match="in use by another diffrep fit"):
        RunFolderLock(tmp_path).acquire()
    (tmp_path / ".diffrep.lock").write_text(json.dumps({**lock.mine, "pid": 1, "host": "elsewhere"}))
    with pytest.raises(Exception, match="if no run uses it, delete"):
        RunFolderLock(tmp_path).acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "77")  # a requeued SLURM job takes over its own earlier lock
    (tmp_path / ".diffrep.lock").write_text(json.dumps({**lock.mine, "pid": 1, "host": "elsewhere",
                                                        "slurm_job": "77"}))
    assert "took over" in RunFolderLock(tmp_path).acquire()
    from diffrep.reliability import is_first_process_of_run

    assert is_first_process_of_run()
    monkeypatch.setenv("LOCAL_RANK", "1")  # a launched DDP rank does not lock: rank 0 holds the folder
    assert not is_first_process_of_run()


def test_a_full_disk_is_one_line_and_leaves_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    import errno

    config = write_config(tmp_path)
    code, _, err = run_cli("fit", "--config", config, "--trainer.max_steps", "4", cwd=tmp_path, capsys=capsys,
                           monkeypatch=monkeypatch)
    assert code == 0, err[-1500:]
    before = (tmp_path / "checkpoints/last.ckpt").read_bytes()
    real_save = torch.save

    def full(obj, f, *args, **kwargs):  # writes a little, then the device is full
        if hasattr(f, "write"):
            f.write(b"x" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)
    code, _, err = run_cli("fit", "--config", config, "--ckpt_path", "last", "--trainer.max_steps", "8", cwd=tmp_path,
                           capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "no space left in" in err and "last.ckpt is untouched" in err and " MB)" in err, err[-1500:]
    assert len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "checkpoints/last.ckpt").read_bytes() == before
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    monkeypatch.setattr(torch, "save", real_save)
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    code, _, err = run_cli("fit", "--config", config, "--ckpt_path", "last", "--trainer.max_steps", "8", cwd=tmp_path,
                           capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "has 0.0 MB free, and a checkpoint of this model needs about" in err, err[-1500:]
    assert (tmp_path / "checkpoints/last.ckpt").read_bytes() == before


@pytest.mark.slow
def test_ddp_ranks_of_one_fit_share_the_run_folder_lock(tmp_path):
    """A 2-process CPU DDP `diffrep fit` (Lightning re-launches the command for rank 1): rank 0 takes
    the lock, rank 1 (LOCAL_RANK=1) does not ask for it, and the lock is gone at the end."""
    import shutil
    import subprocess

    config = write_config(tmp_path)
    out = subprocess.run([shutil.which("diffrep"), "fit", "--config", str(config), "--trainer.max_steps", "4",
                          "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "tests")})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "in use by another diffrep fit" not in out.stderr
    assert step_of(tmp_path / "checkpoints/last.ckpt") == 4 and not (tmp_path / ".diffrep.lock").exists()
