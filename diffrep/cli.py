"""Command line: ``diffrep fit|validate|test|predict --config configs/X.yaml`` (LightningCLI).

Model and data are given as ``class_path`` in YAML, so every method and data set in diffrep (or
in the user's own package) is chosen by config. ``test`` writes a JSON and a Markdown report
next to the checkpoint; ``predict`` writes the codes of the test split (``CodeWriter``). Errors a
user can fix end with one line naming the fix and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from diffrep.datamodules.base import DataError
from diffrep.lightning_modules.backbone import NonFiniteLossError

#: Errors whose message already says what to do; anything else is a bug and keeps its traceback.
USER_ERRORS = (DataError, NonFiniteLossError, FileNotFoundError, ValueError)


class DiffrepCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None) -> None:
        import lightning as L

        super().__init__(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=args,
            auto_configure_optimizers=False,
        )

    def instantiate_trainer(self, **kwargs):
        """``predict`` always has a ``CodeWriter`` (one from the config wins)."""
        from diffrep.callbacks.codes import CodeWriter

        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "predict" and not any(isinstance(c, CodeWriter) for c in trainer.callbacks):
            trainer.callbacks.append(CodeWriter())
        return trainer

    def after_test(self) -> None:
        """Collect every metric of the test run into ``<checkpoint>.report.{json,md}``."""
        from diffrep.callbacks.base import EvaluationCallback
        from diffrep.report import build_report, to_markdown, write_report

        trainer = self.trainer
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        for callback in trainer.callbacks:
            if isinstance(callback, EvaluationCallback):
                metrics.update(callback.last)
        if not trainer.is_global_zero:
            return
        ckpt = trainer.ckpt_path
        report = build_report(type(self.model).__name__, type(self.datamodule).__name__, ckpt, metrics,
                              {"global_step": trainer.global_step})
        stem = Path(ckpt).with_suffix(".report") if ckpt else Path(trainer.default_root_dir) / "report"
        json_path, md_path = write_report(report, stem)
        print(to_markdown(report))
        print(f"diffrep: wrote {json_path} and {md_path}")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``diffrep`` and ``lightning`` console scripts."""
    try:
        DiffrepCLI(args)
    except USER_ERRORS as err:
        print(f"diffrep: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
