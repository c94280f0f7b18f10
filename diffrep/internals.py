"""The private Lightning and torch names diffrep depends on, in one place, each with why.

Neither Lightning nor torch promises these; where a public hook exists diffrep uses it instead.
``PRIVATE_NAMES`` lists every one (the two LightningCLI methods diffrep overrides included), and
tests/test_internals.py checks that each still exists, so an upgrade that renames one fails there,
with its name, and not deep inside a run.
"""

from __future__ import annotations

import warnings
from typing import Any

# (module, object, attribute, why). The accessors below are the only code that reads these names,
# apart from the LightningCLI overrides in diffrep/cli.py, which must carry Lightning's own names.
PRIVATE_NAMES: list[tuple[str, str, str, str]] = [
    ("torch", "ops.mkldnn", "_is_mkldnn_bf16_supported",
     "whether oneDNN runs bf16 natively: emulated bf16 is slower than fp32, so the CLI falls back"),
    ("lightning.pytorch.loops.fit_loop", "_FitLoop", "_warn_if_modules_in_eval_mode",
     "the frozen DPM and encoders are meant to be in eval mode; the check's warning is silenced per run"),
    ("lightning.pytorch.trainer.connectors.checkpoint_connector", "_CheckpointConnector", "_hpc_resume_path",
     "a SLURM requeue resumes from Lightning's hpc checkpoint, which the run-folder checks must allow"),
    ("torch.optim", "Adam", "_step_supports_amp_scaling",
     "fused Adam reads found_inf, so a non-finite step is skipped on the device without a host sync"),
    ("lightning.pytorch.loggers", "WandbLogger", "_wandb_init",
     "the keyword arguments handed to wandb.init: the deprecated `anonymous` one is dropped"),
    ("lightning.pytorch.cli", "LightningCLI", "_parse_ckpt_path",
     "overridden: a missing or wrong --ckpt_path gets one line naming the fix"),
    ("lightning.pytorch.cli", "LightningCLI", "_run_subcommand",
     "overridden: test/validate/predict silence the warning about a fit's missing callbacks"),
]


def mkldnn_bf16_supported() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); False where it cannot say."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def quiet_the_eval_mode_warning_of(fit_loop: Any) -> None:
    """Wrap this trainer's one check that warns about modules in eval mode (it runs once, just
    before ``on_train_start``) in a ``warnings.catch_warnings`` scope that ignores that message: no
    process-wide filter is added, and nothing is left behind if the run stops before it."""
    check = type(fit_loop)._warn_if_modules_in_eval_mode

    def quiet() -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            check(fit_loop)

    fit_loop._warn_if_modules_in_eval_mode = quiet


def hpc_resume_path(trainer: Any) -> str | None:
    """The hpc checkpoint Lightning will resume from after a SLURM requeue (None if none)."""
    return trainer._checkpoint_connector._hpc_resume_path


def skips_on_found_inf(optimizer: Any) -> bool:
    """Whether the optimiser reads ``found_inf`` and skips its whole update on the device (fused Adam/AdamW)."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False))


def wandb_init_kwargs(logger: Any) -> dict[str, Any]:
    """The keyword arguments Lightning's W&B logger will pass to ``wandb.init`` (a live dict)."""
    return logger._wandb_init
