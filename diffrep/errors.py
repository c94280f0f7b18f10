"""diffrep's own errors: the ones a user can fix, whose message names the fix.

``diffrep`` prints such an error in one line and exits 2; every other exception is a bug (in
diffrep or in the user's code) and keeps its traceback. Each class also derives from the
built-in type a caller would expect (``ValueError`` for a bad setting, ``FileNotFoundError`` for a
missing file), so code that catches those keeps working.
"""

from __future__ import annotations


class DiffrepError(Exception):
    """An error the user can fix; the message says how."""


class ConfigError(DiffrepError, ValueError):
    """A setting that cannot work (an unknown name, a value out of range, settings that disagree)."""


class MissingFileError(DiffrepError, FileNotFoundError):
    """A file the run needs is missing; the message names the command that makes it or the flag to set."""
