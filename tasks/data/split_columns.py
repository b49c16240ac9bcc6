"""Guesses of the columns a random split should respect: a group key (rows of one patient,
customer, household...) and a time column. Used for zero-config warnings and `split.groups:
auto`. They start from the profile's column roles (tasks/data/roles.py): a `group_key` column
comes first, and dates are what the `datetime` role reads (ISO 8601 and the common day/month
formats); a column named like an identifier whose values repeat is a group key here too, with
fewer levels than the role asks for (a grouped split needs only ten groups)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tasks.config import SplitConfig
from tasks.data.roles import DATETIME_FORMATS, datetime_format_of, infer_role
from tasks.errors import DataError

# Name parts that say "this identifies a person, household, account...".
GROUP_NAME_PARTS = (
    "id",
    "key",
    "patient",
    "customer",
    "client",
    "user",
    "household",
    "subject",
    "person",
    "account",
    "member",
    "group",
    "family",
    "session",
)
MIN_GROUPS = 10
MIN_ROWS_PER_GROUP = 1.5
# A string column without such a name: distinct values between these shares of the rows.
UNNAMED_GROUP_SHARE = (0.05, 0.5)
UNNAMED_MIN_GROUPS = 20
# Times of day repeat every day: they order nothing across days.
TIME_OF_DAY_FORMATS = tuple(fmt for fmt in DATETIME_FORMATS if "%d" not in fmt and fmt != "ISO8601")
# What a column the profile calls a group key adds to its score: it comes first.
ROLE_BONUS = 2.0


def name_parts(column: str) -> set[str]:
    """'PatientID' -> {'patient', 'id'}; 'household_key' -> {'household', 'key'}."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(column))
    return {part.lower() for part in re.split(r"[^A-Za-z]+", spaced) if part}


# Values looked at first when telling whole numbers from measurements.
WHOLE_NUMBER_PEEK = 1_000


def whole_numbers_or_labels(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_integer_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return True
    values = series.dropna().to_numpy(dtype=float)
    head = values[:WHOLE_NUMBER_PEEK]  # measurements fail here: a million rows are not read
    return bool(all(np.isfinite(part).all() and (part % 1 == 0).all() for part in (head, values)))


def group_score(series: pd.Series) -> float:
    """How much a column looks like a group key (0: not at all); more groups score higher."""
    values = series.dropna()
    if len(values) < 2 * MIN_GROUPS or not whole_numbers_or_labels(values):
        return 0.0
    if looks_like_dates(values):  # repeated dates order rows; they are not groups
        return 0.0
    distinct = values.nunique()
    if distinct < MIN_GROUPS or len(values) / distinct < MIN_ROWS_PER_GROUP:
        return 0.0
    if name_parts(str(series.name)) & set(GROUP_NAME_PARTS):
        return 1.0 + distinct / len(values)
    low, high = UNNAMED_GROUP_SHARE
    is_text = not pd.api.types.is_numeric_dtype(values)
    if is_text and distinct >= UNNAMED_MIN_GROUPS and low <= distinct / len(values) <= high:
        return distinct / len(values)
    return 0.0


def role_bonus(series: pd.Series) -> float:
    return ROLE_BONUS if infer_role(series, str(series.name)).role == "group_key" else 0.0


def likely_group_column(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> str | None:
    """The column most like a group key: one the profile calls `group_key` first, else one
    named like an identifier (or a text column of many repeated values), with at least 10
    groups of 1.5 rows on average; None when none is."""
    scores: dict[str, float] = {}
    for column in frame.columns:
        if str(column) not in exclude:
            score = group_score(frame[column])
            scores[str(column)] = score + role_bonus(frame[column]) if score else 0.0
    best = max(scores.items(), key=lambda item: item[1], default=(None, 0.0))
    return best[0] if best[1] > 0 else None


def looks_like_dates(series: pd.Series) -> bool:
    """Dates (with or without a time), as the `datetime` role reads them; not times of day."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    fmt = datetime_format_of(series)
    return fmt is not None and fmt not in TIME_OF_DAY_FORMATS


def likely_time_column(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> str | None:
    """The first column of dates (a datetime dtype, or ISO-like date strings); None if none."""
    for column in frame.columns:
        if str(column) not in exclude and looks_like_dates(frame[column]):
            return str(column)
    return None


def resolve_split_columns(frame: pd.DataFrame, settings: SplitConfig, target: str) -> SplitConfig:
    """`split.groups: auto` becomes the detected group column (an error when there is none);
    a named split column must be in the data and must not be the target."""
    for key, column in (("groups", settings.groups), ("time", settings.time)):
        if column and column != "auto" and column not in frame.columns:
            raise DataError(f"split.{key} column '{column}' is not in the data.")
        if column == target:
            raise DataError(f"split.{key} column '{column}' is the target; choose another column.")
    if settings.groups != "auto":
        return settings
    column = likely_group_column(frame, exclude=(target,))
    if column is None:
        raise DataError(
            "split.groups is 'auto' but no column looks like a group key (an identifier whose "
            "values repeat); name the column: split.groups: COLUMN."
        )
    return settings.model_copy(update={"groups": column})


def split_columns(settings: SplitConfig) -> list[str]:
    """The columns the split uses; they order or group rows and are not features."""
    return [column for column in (settings.groups, settings.time) if column]


def split_column_notes(settings: SplitConfig, requested: SplitConfig) -> list[str]:
    """Sentences for the run's notes: which column the split uses, and that it is no feature."""
    notes = []
    if settings.groups:
        detected = " (detected: split.groups: auto)" if requested.groups == "auto" else ""
        notes.append(
            f"Column '{settings.groups}' groups the rows{detected}: each group is wholly in train "
            "or in test and in every CV fold; it is not a feature."
        )
    if settings.time:
        notes.append(
            f"Column '{settings.time}' orders the rows: the test set is the latest period and CV "
            "chains forward; it is not a feature."
        )
    return notes
