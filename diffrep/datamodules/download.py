"""Fetching a data set file from its official address, only when the user asks for it."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from diffrep.datamodules.base import DataError


def download(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` atomically (a partial file never looks complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        urllib.request.urlretrieve(url, partial)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} failed ({err}); fetch it by hand into {target.parent}") from err
    partial.replace(target)
    return target
