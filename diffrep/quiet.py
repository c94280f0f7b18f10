"""Quiet logs: silence the messages of the libraries under diffrep that a user cannot act on.

Installed by the ``diffrep`` command (and the tests); each filter names exactly one message:
- Lightning's advertisements for its ``litlogger`` and ``litmodels`` packages, printed by every
  Trainer and by every run whose callbacks have no ModelCheckpoint (an evaluation config's);
- Lightning 2.6's own call of a deprecated torch pytree API (``_pytree`` ``LeafSpec``), a
  warning meant for Lightning's developers;
- Lightning's caution that an ``IterableDataset`` with ``__len__`` may repeat items across
  loader workers: LitData's streaming dataset (``StreamingImageDataModule``) gives every worker
  its own items, so the caution does not apply;
- wandb's notice that the ``anonymous`` setting, which Lightning's WandbLogger always passes,
  has no effect.
Lightning's "Found N module(s) in eval mode" is silenced by the methods themselves, and only
when every such module is one they froze on purpose (``DiffusionBackboneMixin.on_fit_start``).
"""

from __future__ import annotations

import logging
import warnings

_MESSAGES = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r".*anonymous setting has no effect",
    r"Your `IterableDataset` has `__len__` defined",
)


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "litlogger" not in message and "litmodels" not in message


_TIP_FILTER = _DropLitLoggerTip()


def install() -> None:
    """Idempotent: add the filters once."""
    for pattern in _MESSAGES:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.trainer.connectors.logger_connector.logger_connector",
                 "lightning.pytorch.utilities.rank_zero", "lightning.pytorch"):
        logger = logging.getLogger(name)
        if _TIP_FILTER not in logger.filters:
            logger.addFilter(_TIP_FILTER)
