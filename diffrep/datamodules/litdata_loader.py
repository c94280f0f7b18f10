"""LitData's loader with a resume that lasts one epoch (imported only where streaming is used:
importing litdata takes over a second)."""

from __future__ import annotations

from typing import Any

from litdata import StreamingDataLoader


class OneEpochResumeLoader(StreamingDataLoader):
    """A ``StreamingDataLoader`` whose loaded state is replayed for one epoch only.

    LitData keeps replaying a loaded state until an epoch runs to ``StopIteration``; Lightning ends
    an epoch after ``len(loader)`` batches without asking for one more, so the epoch after a resumed
    one would repeat the resumed epoch's tail. Here every ``iter()`` after the first one that
    follows ``load_state_dict`` starts a fresh epoch, as in an unbroken run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replay_pending = False

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        super().load_state_dict(obj)
        self._replay_pending = self.restore

    def __iter__(self) -> Any:
        if not self._replay_pending:
            self.restore = False
        self._replay_pending = False
        return super().__iter__()
