"""Every error a user can cause: the CLI turns each into one sentence and exit code 2.

The messages name the file, column or key at fault; tracebacks are for bugs (and --debug)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class ConfigError(ValueError):
    """A configuration a user wrote is wrong; the message names the key path."""


class DataError(ValueError):
    """The data a user gave cannot be used; the message names the file or column."""


class ValidationFailed(DataError):
    """The data broke its schema; failure_cases lists every failing check and row."""

    def __init__(self, message: str, failure_cases: pd.DataFrame) -> None:
        super().__init__(message)
        self.failure_cases = failure_cases


class AllFamiliesFailed(DataError):
    """No family could be fitted: the grid values or the data are at fault, not tabpipe."""


class ModelIntegrityError(ValueError):
    """The model file does not match its card (tampered with, truncated or replaced)."""


class UntrustedModelError(ModelIntegrityError):
    """The model file lies outside the runs directory and the user did not pass --trust."""


class RegistryError(ConfigError):
    """The registry or a run named by the user cannot be used; the message names it."""


class StorageError(ValueError):
    """A file or folder tabpipe must write cannot be written (disk full, read-only, no
    permission, a directory in the way); the message names the path."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataError,
    ModelIntegrityError,
    StorageError,
)


def storage_error(path: object, error: OSError) -> StorageError:
    """One sentence for an OSError while writing `path`: what is wrong and, if obvious, the fix."""
    reasons = {
        errno.ENOSPC: f"No space left on the disk holding '{path}'; free some space and run again.",
        errno.EDQUOT: f"Disk quota exceeded while writing '{path}'; free some space and run again.",
        errno.EROFS: f"'{path}' is on a read-only file system; choose a writable place.",
        errno.EACCES: f"No permission to write '{path}'; choose a place you can write to.",
        errno.EPERM: f"No permission to write '{path}'; choose a place you can write to.",
        errno.EISDIR: f"'{path}' is a directory; give a file path.",
        errno.ENOTDIR: f"A part of '{path}' is a file, not a folder.",
    }
    detail = error.strerror or type(error).__name__
    return StorageError(reasons.get(error.errno or 0, f"Cannot write '{path}': {detail}."))
