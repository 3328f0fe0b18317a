"""Exceptions for errors a user can cause.

Library code raises these with a message that names the file and line (or key) at fault; the CLI
turns them into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations


class AsrkitError(Exception):
    """An error caused by the user's input or environment, reported as one line."""


class FormatError(AsrkitError):
    """A file does not follow the Kaldi format it should (bad line, unsorted, duplicate key)."""

    def __init__(self, path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class DataDirError(AsrkitError):
    """A data directory fails validation or is inconsistent."""


class AudioError(AsrkitError):
    """Audio for an utterance cannot be read, or is not what the config expects."""


class ConfigError(AsrkitError):
    """A configuration value or option is invalid."""
