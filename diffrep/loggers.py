"""Lightning's W&B logger without the two warnings it makes wandb print on every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

from diffrep.internals import wandb_init_kwargs


class WandbLogger(LightningWandbLogger):
    """``lightning.pytorch.loggers.WandbLogger`` (same arguments) that does not pass wandb the
    deprecated ``anonymous`` setting unless asked for ("The anonymous setting has no effect"),
    and creates ``save_dir`` before wandb looks for a git repository in it ("git root ... does
    not exist")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        init = wandb_init_kwargs(self)
        if init.get("anonymous") is None:
            init.pop("anonymous", None)
        if self._save_dir:
            Path(self._save_dir).mkdir(parents=True, exist_ok=True)
