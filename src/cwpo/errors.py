"""The one exception type users see: a clear message naming what went wrong and where.

And :func:`warn`, for a success a user should question (one line on stderr, once).
"""

import logging
import sys

_WARNED: set[str] = set()


def warn(message: str) -> None:
    """Print ``cwpo: warning: message`` on stderr, once per process for the same message; the
    command's log file gets it too (an INFO record kept off the terminal, see :mod:`cwpo.console`)."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"cwpo: warning: {message}", file=sys.stderr)
        logging.getLogger("cwpo.warning").info("warning: %s", message, extra={"file_only": True})


class CWPOError(Exception):
    """An error caused by user input (a file, a config value, a model id), not by a bug.

    The CLI prints these as one line without a traceback and exits with status 2.
    """


class DataError(CWPOError):
    """Bad preference data: names the file, the row (1-based line) and the problem."""

    def __init__(self, problem: str, path: str | None = None, row: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        super().__init__(f"{where}{problem}")
        self.path, self.row, self.problem = path, row, problem


class ConfigError(CWPOError):
    """An invalid configuration value (every problem listed at once where possible)."""


class ModelNotFoundError(CWPOError):
    """A model name, path or hub id that cannot be resolved on this machine."""
