"""Every error a user can cause: the CLI turns each into one sentence and exit code 2.

The messages name the file, column or key at fault; tracebacks are for bugs (and --debug)."""

from __future__ import annotations

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


USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataError, ModelIntegrityError)
