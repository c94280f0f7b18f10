"""Command line: ``diffrep fit|validate|test|predict --config configs/X.yaml`` (LightningCLI).

Model and data are given as ``class_path`` in YAML, so every method and data set in diffrep (or
in the user's own package) is chosen by config. ``fit`` and ``test`` print what the run learned
and write it as JSON and Markdown (``<run>/metrics.json`` and ``report.md``; ``test`` next to the
checkpoint, never over an earlier report); ``predict`` writes the codes of the test split
(``CodeWriter``). Errors a user can fix (diffrep's own, ``diffrep.errors``) end with one line naming
the fix and exit code 2; any other exception keeps its traceback. A run stopped by SIGTERM/SIGUSR1
exits 128 + the signal's number after saving ``last.ckpt``. ``lightning_main`` is the ``lightning``
script: diffrep's subcommands, and Lightning's own CLI for the rest.
"""

from __future__ import annotations

import netrc
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

import lightning
from jsonargparse import ActionConfigFile
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO

from diffrep.checkpoints import TRUST_ENV
from diffrep.errors import ConfigError, DiffrepError

#: Errors whose message already says what to do (diffrep's own, and Lightning's for a trainer setting
#: such as a GPU request without a GPU); anything else is a bug and keeps its traceback (exit 1).
USER_ERRORS = (DiffrepError, MisconfigurationException)


def wandb_has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (where `wandb login` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def force_wandb_offline_without_credentials(logger: Any) -> None:
    """An online W&B logger with no credentials would stop at a login prompt (or fail on a
    cluster node): switch it to offline, with a warning that says how to sync later."""
    loggers = logger if isinstance(logger, list) else [logger]
    for entry in loggers:
        class_path = getattr(entry, "class_path", "") or ""
        init_args = getattr(entry, "init_args", None)
        if not class_path.endswith("WandbLogger") or init_args is None:
            continue
        mode = os.environ.get("WANDB_MODE", "")
        if (
            not init_args.get("offline", False)
            and mode not in ("offline", "disabled", "dryrun")
            and not wandb_has_credentials()
        ):
            init_args["offline"] = True
            warnings.warn(
                "W&B: no credentials (run `wandb login` or set WANDB_API_KEY); logging offline instead. "
                "Upload later with `wandb sync <save_dir>/wandb/offline-run-*`",
                stacklevel=1,
            )


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); elsewhere bf16 is emulated."""
    from diffrep.internals import mkldnn_bf16_supported

    return mkldnn_bf16_supported()


def runs_on_cpu(accelerator: Any) -> bool:
    """Whether a trainer with this ``accelerator`` setting will run on the CPU."""
    import torch

    name = str(accelerator).lower()
    if name == "auto":
        return not torch.cuda.is_available() and not torch.backends.mps.is_available()
    return name == "cpu" or "cpuaccelerator" in name


def train_in_fp32_where_bf16_is_emulated(config: Any) -> None:
    """The CPU configs train in bf16-mixed, 1.2-1.3x faster than fp32 with the same loss on a CPU
    with AVX512-BF16 or AMX (benchmarks/precision.py). A CPU without them emulates bf16 and runs it
    several times slower than fp32 (README, Speed), so there a bf16-mixed run trains in fp32, with a
    warning; ``--emulated_bf16 true`` keeps bf16 (e.g. to reproduce its numerics)."""
    trainer = config.trainer
    if str(trainer.precision) != "bf16-mixed" or config.get("emulated_bf16", False):
        return
    if not runs_on_cpu(trainer.accelerator) or cpu_has_fast_bf16():
        return
    trainer.precision = "32-true"
    warnings.warn("this CPU has no native bf16 (AVX512-BF16/AMX): bf16-mixed would run emulated, several times "
                  "slower than fp32, so this run uses --trainer.precision 32-true; add --emulated_bf16 true "
                  "to keep bf16-mixed", stacklevel=1)


def checkpoints_follow_the_run_folder(trainer: Any) -> None:
    """A ``ModelCheckpoint`` without ``dirpath`` writes to ``<default_root_dir>/checkpoints``, so
    ``--trainer.default_root_dir DIR`` moves a run's checkpoints with its logs and images (Lightning
    would put them under the logger's folder, or beside the earlier run's). A set ``dirpath`` stays."""
    root = trainer.get("default_root_dir") or "."
    for callback in trainer.get("callbacks") or []:
        class_path = str(getattr(callback, "class_path", "") or "")
        init_args = getattr(callback, "init_args", None)
        if class_path.endswith("ModelCheckpoint") and init_args is not None and init_args.get("dirpath") is None:
            init_args["dirpath"] = str(Path(root) / "checkpoints")


#: the run-folder locks this process took (``RunFolderLock``), released when its command ends
HELD_LOCKS: list[Any] = []

#: set to 1 for jsonargparse's whole text of a command-line error (every Union alternative it tried)
VERBOSE_ENV = "DIFFREP_VERBOSE"


def one_line_parse_error(message: str) -> str:
    """jsonargparse's error (a screen listing every Union subtype it tried) as the line a user needs:
    the key as typed, the value and the type expected, or the setting a class does not take."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    nested = re.search(r"NestedArg\(key='([^']+)'", message)
    in_class = re.search(r"Problem with given class_path '([^']+)'", message)
    key = keys[0] if keys else ""
    if in_class and key:
        inner = keys[1] if len(keys) > 1 else nested.group(1) if nested else None
        key = f"{key}.init_args.{inner}" if inner else key
    expected = re.search(r"Expected a <class '([^']+)'>\. Got value: (.*)", message)
    if key and expected:
        kind = expected.group(1).rsplit(".", 1)[-1]
        article = "an" if kind[:1] in "aeiou" else "a"
        return f"--{key}: expected {article} {kind}, got {expected.group(2).strip()!r}"
    refused = re.search(r"Option '([^']+)' is not accepted", message)
    if refused and key:
        owner = in_class.group(1).rsplit(".", 1)[-1] if in_class else key
        return (f"--{keys[0]}.init_args.{refused.group(1)}: {owner} has no setting {refused.group(1)!r}"
                "; --print_config lists the ones it has")
    return " ".join(message.split())


class OneLineErrorParser(LightningArgumentParser):
    """Command-line errors in one line (``one_line_parse_error``) and exit 2; the parser's full text
    with DIFFREP_VERBOSE=1."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if os.environ.get(VERBOSE_ENV, "") not in ("", "0") or not self.exit_on_error:
            super().error(message, ex)
        print(f"diffrep: error: {one_line_parse_error(message)} ({VERBOSE_ENV}=1 shows the parser's full text)",
              file=sys.stderr)
        sys.exit(2)


#: Trainer settings where an int and a float mean different things (1 batch against 100% of them)
INT_OR_FRACTION = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
                   "val_check_interval", "overfit_batches")


def integers_as_typed(argv: list[str]) -> dict[str, int]:
    """jsonargparse turns ``--trainer.limit_val_batches 1`` into 1.0 (Lightning issue #21259: importing
    lightning reorders the Union[int, float] it tries), which Lightning reads as 100% of the batches.
    The settings of ``INT_OR_FRACTION`` typed as an integer on the command line, as the int the user wrote."""
    typed: dict[str, int] = {}
    for i, token in enumerate(argv):
        for key in INT_OR_FRACTION:
            value = argv[i + 1] if token == f"--trainer.{key}" and i + 1 < len(argv) else (
                token.split("=", 1)[1] if token.startswith(f"--trainer.{key}=") else None)
            if value is not None:
                typed.pop(key, None)  # the last one typed wins, as in the parser
                if re.fullmatch(r"\d+", value.strip()):
                    typed[key] = int(value)
    return typed


def refuse_old_settings(argv: list[str]) -> None:
    """A config (file or ``--model.init_args.KEY``) that still sets a method's settings the old flat way
    (``lr``, ``ema_decay``, ``score_net``, ...) ends here with one line naming the new key
    (``lightning_modules/migration.py``): the user edits it, diffrep does not guess."""
    import yaml

    from diffrep.lightning_modules.migration import method_of, old_setting

    method = None
    for i, token in enumerate(argv):
        if token in ("--config", "-c") and i + 1 < len(argv) and Path(argv[i + 1]).is_file():
            source = argv[i + 1]
            try:
                model = (yaml.safe_load(Path(source).read_text()) or {}).get("model") or {}
            except (yaml.YAMLError, AttributeError):
                continue  # the parser says what is wrong with the file
            if not isinstance(model, dict):
                continue
            method = method_of(model.get("class_path")) or method
            keys = list((model.get("init_args") or {}).keys())
            prefix = "model.init_args."
        elif token == "--model" and i + 1 < len(argv):
            method = method_of(argv[i + 1]) or method
            continue
        elif token.startswith("--model.") and method:
            key = token.split("=", 1)[0].removeprefix("--model.").removeprefix("init_args.").split(".")[0]
            source, keys, prefix = "the command line", [key], "--model.init_args."
        else:
            continue
        found = old_setting(method, keys) if method else None
        if found:
            raise ConfigError(f"{source} sets {prefix}{found[0]}, which is now {prefix}{found[1]} (a {method}'s "
                              "settings are grouped: `diffrep fit --model " f"{method} --print_config` shows them)")


def accept_user_objectives() -> None:
    """A method's ``objective`` may be the user's own ``DenoisingObjective`` subclass by ``class_path``:
    jsonargparse's subclass mode for that one group. Every other settings group is a plain dataclass,
    whose fields a config gives in part over the method's own defaults."""
    from jsonargparse import set_parsing_settings

    from diffrep.diffusion.objective import DenoisingObjective

    set_parsing_settings(subclasses_enabled=[DenoisingObjective])


class DiffrepCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None) -> None:
        self._argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
        refuse_old_settings(self._argv)
        accept_user_objectives()
        super().__init__(
            lightning.LightningModule,
            lightning.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=args,
            auto_configure_optimizers=False,
            parser_kwargs={"description": "diffrep: representation learning with diffusion models (LightningCLI).",
                           "epilog": "One more subcommand, not Lightning's: prepare (an image folder or LMDB -> "
                                     "streaming LitData chunks); see `diffrep prepare --help`."},
        )

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Lightning's parser, with ``OneLineErrorParser``'s errors."""
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={lightning.__version__}"])
        parser = OneLineErrorParser(**kwargs)
        parser.add_argument("-c", "--config", action=ActionConfigFile,
                            help="Path to a configuration file in json or yaml format.")
        return parser

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument(
            "--evaluate", type=bool, default=True,
            help="run the config's evaluation callbacks (grids, probes, metrics); false skips them all, "
            "e.g. for a smoke fit (checkpoints and logging stay)",
        )
        parser.add_argument(
            "--trust_checkpoints", type=bool, default=False,
            help="load checkpoints that need full unpickling (they can run code when read); by default only "
            "weights, numbers and strings are read, which is all diffrep's and the official PDAE files hold",
        )
        parser.add_argument(
            "--emulated_bf16", type=bool, default=False,
            help="keep --trainer.precision bf16-mixed on a CPU without native bf16 (AVX512-BF16/AMX), where it "
            "is emulated and slower than fp32; by default such a run trains in 32-true",
        )

    def _parse_ckpt_path(self) -> None:  # a private LightningCLI method (diffrep/internals.py lists it)
        """LightningCLI reads ``--ckpt_path`` before anything else; a missing or broken file
        gets diffrep's message (with the other checkpoints beside it) instead of a traceback."""
        from diffrep.reliability import AtomicCheckpointIO

        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("trust_checkpoints"):
            os.environ[TRUST_ENV] = "1"  # read by every checkpoint load of this run (the DPM's too)
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path and path not in ("last", "best", "hpc") and "://" not in str(path):
            checkpoint = AtomicCheckpointIO().load_checkpoint(path, map_location="cpu")
            say_which_model_the_checkpoint_holds(path, checkpoint, self.config[subcommand].get("model"))
            if self.settings_of_an_older_checkpoint(subcommand, checkpoint):
                return
        super()._parse_ckpt_path()

    def settings_of_an_older_checkpoint(self, subcommand: str, checkpoint: dict[str, Any]) -> bool:
        """A checkpoint saved before a method's settings were grouped: its hyper-parameters translated
        (``migration.migrate_hparams``) and applied as Lightning applies a checkpoint's own. False (nothing
        done) for a checkpoint in today's form."""
        from diffrep.lightning_modules.migration import is_old, method_of, migrate_hparams

        hparams = dict(checkpoint.get("hyper_parameters") or {})
        class_path = hparams.pop("_class_path", None)
        hparams.pop("_instantiator", None)
        method = method_of(class_path)
        if not method or not is_old(method, hparams):
            return False
        model = {"class_path": class_path, "init_args": migrate_hparams(method, hparams)}
        self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
        return True

    def _run_subcommand(self, subcommand: str) -> None:  # private too (diffrep/internals.py)
        """``test``, ``validate`` and ``predict`` evaluate a checkpoint with the evaluation config's
        callbacks: Lightning's warning that the checkpoint's training callbacks are missing is about
        resuming a fit, so it is silenced there (and only there)."""
        if subcommand == "fit":
            return super()._run_subcommand(subcommand)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")
            return super()._run_subcommand(subcommand)

    def instantiate_classes(self) -> None:
        """jsonargparse reports an error raised while building the model or data as a ValueError
        listing every Union subtype with the whole Namespace; the user's error inside it is raised
        instead, so its one line reaches the user."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            cause = user_error_inside(err)
            if cause is None:
                raise
            raise cause from None

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        force_wandb_offline_without_credentials(config.trainer.logger)
        train_in_fp32_where_bf16_is_emulated(config)
        checkpoints_follow_the_run_folder(config.trainer)

    def instantiate_trainer(self, **kwargs):
        """Every run writes checkpoints atomically and has the reliability callbacks (ones the
        config sets win; ``last.ckpt`` ends at the final step); ``predict`` always has a ``CodeWriter``."""
        from lightning.pytorch.callbacks import ModelSummary

        from diffrep.callbacks.base import EvaluationCallback
        from diffrep.callbacks.codes import CodeWriter
        from diffrep.callbacks.online import OnlineLinearProbe
        from diffrep.callbacks.summary import ParameterSummary
        from diffrep.reliability import (
            AtomicCheckpointIO,
            DiskSpaceCheck,
            FinalLastCheckpoint,
            NonFiniteGuard,
            PreemptionCheckpoint,
            RunFolderLock,
            is_first_process_of_run,
            refuse_a_folder_with_an_earlier_last_checkpoint,
            refuse_last_with_nothing_to_resume,
        )

        trainer = super().instantiate_trainer(**kwargs)
        for key, value in integers_as_typed(self._argv).items():  # 1 batch, not 100% of them
            if isinstance(getattr(trainer, key, None), float):
                setattr(trainer, key, value)
        config = self.config[self.subcommand] if self.subcommand else self.config
        if not config.get("evaluate", True):
            evaluations = (EvaluationCallback, OnlineLinearProbe)
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, evaluations)]
        if self.subcommand == "fit" and not config.get("ckpt_path"):
            refuse_a_folder_with_an_earlier_last_checkpoint(trainer)
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            refuse_last_with_nothing_to_resume(trainer)
        if self.subcommand == "fit" and is_first_process_of_run():  # the other DDP ranks share rank 0's lock
            lock = RunFolderLock(trainer.default_root_dir)
            note = lock.acquire()
            HELD_LOCKS.append(lock)
            if note:
                print(f"diffrep: {note}", file=sys.stderr, flush=True)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        trainer.callbacks = [ParameterSummary(max_depth=c._max_depth) if type(c) is ModelSummary else c
                             for c in trainer.callbacks]  # Lightning's default, without its 0 FLOPs
        wanted = [NonFiniteGuard, PreemptionCheckpoint, FinalLastCheckpoint, DiskSpaceCheck]
        wanted += [CodeWriter] if self.subcommand == "predict" else []
        for cls in wanted:
            if not any(isinstance(c, cls) for c in trainer.callbacks):
                trainer.callbacks.append(cls())
        return trainer

    def before_fit(self) -> None:
        self._started = time.time()

    def after_fit(self) -> None:
        """Print what the run learned and write ``<run>/metrics.json`` and ``<run>/report.md``."""
        self.report_run("fit")

    def before_test(self) -> None:
        self._started = time.time()

    def after_test(self) -> None:
        """The same for ``diffrep test``, next to the checkpoint: ``<checkpoint>.report.{json,md}``,
        never over an earlier report (a second evaluation of one checkpoint is ``...report-v1``)."""
        self.report_run("test")

    def report_run(self, stage: str) -> None:
        """Collect the final metrics (evaluation callbacks and logged scalars) and the images this
        run wrote; print them as tables and write them to files, whatever the logger."""
        from diffrep.callbacks.base import EvaluationCallback
        from diffrep.report import build_report, to_text, write_report

        trainer = self.trainer
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        for callback in trainer.callbacks:
            if isinstance(callback, EvaluationCallback):
                metrics.update(callback.last)
        if not trainer.is_global_zero:
            return
        run = Path(trainer.default_root_dir)
        started = getattr(self, "_started", 0.0)
        images = sorted(str(p) for p in (run / "images").glob("*.png") if p.stat().st_mtime >= started - 1)
        ckpt = trainer.ckpt_path if stage == "test" else last_checkpoint_of(trainer)
        step = trainer.global_step if stage == "fit" or not ckpt else checkpoint_step(ckpt)
        source = ckpt or (self.model.hparams.get("official_checkpoint") if stage == "test" else None)
        report = build_report(type(self.model).__name__, type(self.datamodule).__name__, source, metrics,
                              {"global_step": step, "stage": stage, "images": images})
        if stage == "fit":
            json_path, md_path = write_report(report, run / "metrics", markdown_name="report.md")
        else:
            stem = Path(ckpt).with_suffix(".report") if ckpt else run / "test_report"
            json_path, md_path = write_report(report, stem, overwrite=False)
        print(to_text(report))
        print(f"diffrep: wrote {json_path} and {md_path}")


def checkpoint_step(path: str) -> int | None:
    """The training step a checkpoint was saved at (``diffrep test`` evaluates it, its trainer is at 0)."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step"))
    except Exception:  # a checkpoint without a step (an official file): the report says none
        return None


def user_error_inside(err: BaseException) -> BaseException | None:
    """The first of diffrep's own errors (``USER_ERRORS``) in ``err``'s chain of causes, if any."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [err]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, USER_ERRORS):
            return current
        pending += [current.__cause__, current.__context__]
    return None


def last_checkpoint_of(trainer: Any) -> str | None:
    """The run's ``last.ckpt`` (or newest checkpoint) for the fit report; None when none was written."""
    from diffrep.reliability import last_checkpoint

    found = last_checkpoint(trainer)
    return None if found == "none yet" else found


def say_which_model_the_checkpoint_holds(path: str, checkpoint: dict[str, Any], model: Any) -> None:
    """LightningCLI rebuilds the model from the checkpoint's saved class and settings, whatever the
    config names: when the two differ, stop (exit 2) rather than run one method's evaluation on
    another method's model for minutes. Naming the checkpoint's class (``--model CLASS``) runs it."""
    method = (checkpoint.get("diffrep") or {}).get("method")  # a checkpoint saved outside the CLI has only this
    saved_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path") or (
        f"diffrep.lightning_modules.{method}" if method else None)
    named_path = getattr(model, "class_path", None) if model is not None else None
    if not saved_path or not named_path:
        return
    saved, named = str(saved_path).rsplit(".", 1)[-1], str(named_path).rsplit(".", 1)[-1]
    if saved != named:
        raise ConfigError(f"{path} holds a {saved}, but the config names a {named}: use a {saved} config, or add "
                          f"--model {saved_path} (after the configs) to run the {saved} with its saved settings")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``diffrep`` console script (and of ``lightning fit|validate|test|predict``)."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from diffrep import quiet

    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["prepare"]:  # not a Lightning subcommand: folder or LMDB -> LitData chunks
        from diffrep.datamodules.prepare import main as prepare_main

        prepare_main(argv[1:])
        return
    quiet.install()
    try:
        cli = DiffrepCLI(args)
    except USER_ERRORS as err:
        print(f"diffrep: error: {err}", file=sys.stderr)
        sys.exit(2)
    except SIGTERMException:  # Lightning stops a SIGTERM'd run this way; the checkpoint is saved
        sys.exit(128 + int(signal.SIGTERM))
    finally:  # on every way out: the run folder is free again
        while HELD_LOCKS:
            HELD_LOCKS.pop().release()
    code = stop_signal_exit_code(cli)
    if code:
        sys.exit(code)


def stop_signal_exit_code(cli: DiffrepCLI) -> int:
    """0, or 128 + the signal that stopped the run (``PreemptionCheckpoint.exit_code``)."""
    from diffrep.reliability import PreemptionCheckpoint

    trainer = getattr(cli, "trainer", None)
    for callback in getattr(trainer, "callbacks", []):
        if isinstance(callback, PreemptionCheckpoint) and callback.exit_code:
            return callback.exit_code
    return 0


if __name__ == "__main__":
    main()


#: the subcommands diffrep's ``lightning`` script runs itself; everything else is Lightning's own CLI
DIFFREP_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def lightning_main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning`` console script: ``lightning fit --config ...`` (and validate,
    test, predict, ``--help``) is diffrep's CLI; every other command (``lightning run SCRIPT``,
    ``lightning consolidate``, the older ``lightning run model SCRIPT``) goes on to Lightning's own
    command line (``lightning.fabric.cli``), so installing diffrep takes nothing away from Lightning."""
    args = list(sys.argv[1:] if args is None else args)
    if not args or args[0] in DIFFREP_SUBCOMMANDS or args[0].startswith("-"):
        main(args)
        return
    try:
        from lightning.fabric.cli import _main as lightning_command_line
    except ImportError:
        print("diffrep: error: Lightning's own commands (lightning run, consolidate) need click: pip install click",
              file=sys.stderr)
        sys.exit(2)
    if args[:2] == ["run", "model"]:  # Lightning 2.0-2.2 spelled `lightning run model SCRIPT`
        args = ["run", *args[2:]]
    lightning_command_line.main(args=args, prog_name="lightning")
