"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class TinyThinkerError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""


class InputError(TinyThinkerError):
    """Bad input data, located by file, line (1-based) and field."""

    def __init__(self, path: str | Path | None, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.message = message
        where = self.path or "<input>"
        if line is not None:
            where += f":{line}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class ConfigError(TinyThinkerError):
    """An invalid configuration value or combination."""
