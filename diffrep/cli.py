"""Command line: ``diffrep fit|validate|test|predict --config configs/X.yaml`` (LightningCLI).

Model and data are given as ``class_path`` in YAML, so every method and data set in diffrep (or
in the user's own package) is chosen by config. Errors a user can fix end with one line naming
the fix and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

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


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``diffrep`` and ``lightning`` console scripts."""
    try:
        DiffrepCLI(args)
    except USER_ERRORS as err:
        print(f"diffrep: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
