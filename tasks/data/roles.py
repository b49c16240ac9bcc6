"""Column roles, decided as a careful person would after one look at the table.

Every feature column gets one role and the reason for it: identifier, group_key, text and
constant columns are left out of the model; datetime columns are expanded into calendar features
inside the pipeline; categorical (including whole-number codes), boolean and numeric columns are
encoded. A config's `columns: {name: role}` overrides any decision. Column names are only ever
used as values here (dictionary keys, list items), never as code or keyword arguments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
import pandas as pd

from tasks.config import ColumnRoleName
from tasks.errors import DataError

ROLE_NAMES: tuple[str, ...] = get_args(ColumnRoleName)  # one list: the config's Literal
LEFT_OUT_ROLES = ("identifier", "group_key", "text", "constant")

# Below this many rows, uniqueness says nothing about a column being an identifier.
MIN_ROWS_FOR_IDENTITY = 20
# Strings (or whole numbers) distinct in at least this share of rows name the row itself.
IDENTIFIER_MIN_SHARE = 0.95
# A code whose values repeat but has at least this many levels, and this share of the rows, is a
# key of groups (patients, customers): one-hot would explode and target statistics would learn
# the groups, not the task.
GROUP_KEY_MIN_LEVELS = 100
GROUP_KEY_MIN_SHARE = 0.05
# Categoricals with more levels than this are encoded by target statistics (cross-fitted), not
# one-hot.
ONE_HOT_MAX_LEVELS = 30
# Whole numbers starting at 1 or above with at most this many values are codes (precinct 1-5,
# stage 1-4, year 1997-2002); counts start at 0 and stay numbers.
CODE_MAX_LEVELS = 10
# Free-form text: most values hold a space, or they are long.
TEXT_SPACE_SHARE = 0.5
TEXT_MEDIAN_LENGTH = 30
TEXT_MIN_SHARE = 0.5
# A string column is a date when this share of a sample of its values parses in one format.
DATETIME_MIN_PARSED = 0.95
DATETIME_SAMPLE = 500
DATETIME_FORMATS = (
    "ISO8601",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%H:%M",
    "%H:%M:%S",
    "%I:%M %p",
    "%I:%M:%S %p",
)
EPOCH = "epoch"
# Values that look like a date or a time: digits around a date or clock separator.
DATE_LIKE = re.compile(r"\d[-/.:]\d")
ID_WORDS = {"id", "ids", "key", "uuid", "guid"}
UNIQUE_REASON = "it is unique per row, like an identifier"


@dataclass(frozen=True)
class ColumnRole:
    """One column's role and why; datetime columns carry their format and calendar parts."""

    role: str
    reason: str
    datetime_format: str | None = None
    calendar_parts: list[str] = field(default_factory=list)
    # How the pipeline encodes a used column: numbers, one-hot, or target statistics.
    encoding: str | None = None


def is_number_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def whole_numbers(values: pd.Series) -> bool:
    if not is_number_column(values):
        return False
    finite = values.to_numpy(dtype=float, na_value=np.nan)
    finite = finite[np.isfinite(finite)]
    return bool(len(finite)) and bool(np.all(np.mod(finite, 1) == 0))


def name_words(name: str) -> set[str]:
    """'patientId', 'customer_id', 'Row ID' -> their words, lower-cased."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return {word.lower() for word in re.split(r"[^0-9A-Za-z]+", spaced) if word}


def free_form(values: pd.Series) -> bool:
    """Sentences, names or titles rather than codes: spaces in most values, or long values."""
    text = values.astype(str)
    return bool(
        text.str.contains(r"\s", regex=True).mean() >= TEXT_SPACE_SHARE
        or text.str.len().median() >= TEXT_MEDIAN_LENGTH
    )


def parse_datetimes(values: pd.Series, fmt: str) -> pd.Series:
    """Parsed as UTC timestamps (NaT where a value does not parse); epoch seconds or ms."""
    if fmt == EPOCH:
        numbers = pd.to_numeric(values, errors="coerce")
        unit: Any = "ms" if numbers.abs().max() > 1e11 else "s"
        return pd.to_datetime(numbers, unit=unit, errors="coerce", utc=True)
    text: Any = values.astype("object").where(values.notna())
    return pd.Series(
        pd.to_datetime(text, format=fmt, errors="coerce", utc=True), index=values.index
    )


def datetime_format_of(values: pd.Series) -> str | None:
    """The first format in which (nearly) every sampled value parses, else None."""
    sample = values.dropna().astype(str).drop_duplicates()
    sample = sample.sample(min(len(sample), DATETIME_SAMPLE), random_state=0)
    if sample.empty or sample.str.contains(DATE_LIKE).mean() < DATETIME_MIN_PARSED:
        return None
    for fmt in DATETIME_FORMATS:
        if parse_datetimes(sample, fmt).notna().mean() >= DATETIME_MIN_PARSED:
            return fmt
    return None


def calendar_parts(parsed: pd.Series) -> list[str]:
    """The calendar features that vary in the data: a time-only column yields the hour alone."""
    valid = parsed.dropna()
    parts = {
        "year": valid.dt.year,
        "month": valid.dt.month,
        "day": valid.dt.day,
        "weekday": valid.dt.normalize(),  # varies when the dates do
        "hour": valid.dt.hour * 60 + valid.dt.minute,
    }
    return [name for name, part in parts.items() if part.nunique() > 1]


def datetime_role(values: pd.Series, fmt: str, why: str) -> ColumnRole:
    parts = calendar_parts(parse_datetimes(values, fmt))
    if not parts:
        return ColumnRole("constant", f"{why}, but every value falls on the same date and time")
    return ColumnRole(
        "datetime",
        f"{why}: expanded into {', '.join(parts)} inside the pipeline",
        datetime_format=fmt,
        calendar_parts=parts,
        encoding="calendar",
    )


def categorical_role(distinct: int, why: str) -> ColumnRole:
    """One-hot for few levels; cross-fitted target statistics for many."""
    if distinct > ONE_HOT_MAX_LEVELS:
        return ColumnRole(
            "categorical",
            f"{why}; {distinct} levels, so encoded by cross-fitted target statistics",
            encoding="target",
        )
    return ColumnRole("categorical", why, encoding="one_hot")


def numeric_role(series: pd.Series, n_rows: int, distinct: int, name: str) -> ColumnRole:
    """Numbers: an identifier or group key by shape (and name), a code, a flag, or a quantity."""
    whole = whole_numbers(series)
    if whole and n_rows >= MIN_ROWS_FOR_IDENTITY and distinct == n_rows:
        return ColumnRole("identifier", UNIQUE_REASON)
    if whole and name_words(name) & ID_WORDS and is_many_levels(distinct, n_rows):
        return ColumnRole(
            "group_key",
            f"whole numbers named like an identifier with {distinct} repeating values: a "
            "likely group column for splitting",
        )
    if distinct == 2:
        return ColumnRole("boolean", "two values", encoding="numeric")
    low = series.min()
    if whole and 3 <= distinct <= CODE_MAX_LEVELS and low >= 1:
        return ColumnRole(
            "categorical",
            f"whole numbers with only {distinct} values, none below 1: codes, not amounts",
            encoding="one_hot",
        )
    return ColumnRole("numeric", "numbers", encoding="numeric")


def is_many_levels(distinct: int, n_rows: int) -> bool:
    return distinct >= GROUP_KEY_MIN_LEVELS and distinct >= GROUP_KEY_MIN_SHARE * n_rows


def is_free_text(values: pd.Series, n_rows: int, distinct: int) -> bool:
    """Many distinct free-form values (names, titles, comments), not a handful of labels."""
    many = distinct / max(n_rows, 1) >= TEXT_MIN_SHARE or is_many_levels(distinct, n_rows)
    return (
        n_rows >= MIN_ROWS_FOR_IDENTITY
        and distinct > ONE_HOT_MAX_LEVELS
        and many
        and free_form(values)
    )


def string_role(series: pd.Series, n_rows: int, distinct: int) -> ColumnRole:
    """Strings: a date, free text, an identifier, a group key, or categories."""
    values = series.dropna()
    fmt = datetime_format_of(values)
    if fmt is not None:
        shown = "ISO 8601" if fmt == "ISO8601" else f"'{fmt}'"
        return datetime_role(series, fmt, f"dates or times in {shown} format")
    share = distinct / max(n_rows, 1)
    if is_free_text(values, n_rows, distinct):
        return ColumnRole(
            "text",
            f"free-form text ({distinct} distinct values); left out, text features are not built",
        )
    if n_rows >= MIN_ROWS_FOR_IDENTITY and share >= IDENTIFIER_MIN_SHARE:
        return ColumnRole(
            "identifier", f"{share:.0%} of the values are distinct, like an identifier"
        )
    if is_many_levels(distinct, n_rows):
        return ColumnRole(
            "group_key",
            f"{distinct} distinct values that repeat: a likely group column for splitting",
        )
    if distinct == 2:
        return ColumnRole("boolean", "two values", encoding="one_hot")
    return categorical_role(distinct, "text categories")


def infer_role(series: pd.Series, name: str) -> ColumnRole:
    """The role one column's values suggest."""
    n_rows = len(series)
    distinct = int(series.nunique(dropna=True))
    if distinct == 0:
        return ColumnRole("constant", "every value is empty")
    if distinct == 1 and not series.isna().any():
        return ColumnRole("constant", "it holds one constant value")
    if distinct == 1:
        return ColumnRole(
            "boolean", "one value or empty: the gap is the signal", encoding="one_hot"
        )
    if pd.api.types.is_bool_dtype(series):
        return ColumnRole("boolean", "true/false values", encoding="one_hot")
    if is_number_column(series):
        return numeric_role(series, n_rows, distinct, name)
    return string_role(series, n_rows, distinct)


def declared_role(series: pd.Series, name: str, role: str) -> ColumnRole:
    """The role a config declares, checked against what the column holds."""
    why = f"set in the config (columns.{name})"
    distinct = int(series.nunique(dropna=True))
    if role in LEFT_OUT_ROLES:
        return ColumnRole(role, f"{why}; left out")
    if role == "numeric":
        if not is_number_column(series):
            example = series.dropna().astype(str).iloc[0] if distinct else ""
            raise DataError(
                f"columns.{name}: declared numeric, but column '{name}' holds text "
                f"(e.g. '{example}'); declare it categorical or fix the data."
            )
        return ColumnRole("numeric", why, encoding="numeric")
    if role == "datetime":
        fmt = EPOCH if is_number_column(series) else datetime_format_of(series.dropna())
        if fmt is None:
            raise DataError(
                f"columns.{name}: declared datetime, but the values of column '{name}' are not "
                "dates in a format tabpipe reads (ISO 8601, day/month/year, month/day/year, "
                "times of day, or epoch seconds as numbers)."
            )
        return datetime_role(series, fmt, f"{why}, read as {fmt}")
    if role == "boolean" and is_number_column(series):
        return ColumnRole("boolean", why, encoding="numeric")
    return categorical_role(distinct, why)


def decide_roles(features: pd.DataFrame, declared: Mapping[str, str]) -> dict[str, ColumnRole]:
    """Each feature column's role and reason: declared in the config, else inferred."""
    unknown = [name for name in declared if name not in features.columns]
    if unknown:
        raise DataError(
            f"columns.{unknown[0]}: the data has no feature column '{unknown[0]}' "
            "(column names must match exactly, spaces included)."
        )
    roles: dict[str, ColumnRole] = {}
    for position, name in enumerate(map(str, features.columns)):
        series = features.iloc[:, position]
        if name in declared:
            roles[name] = declared_role(series, name, declared[name])
        else:
            roles[name] = infer_role(series, name)
    return roles


PLAIN_REASONS = ("numbers", "text categories", "two values", "true/false values")


def role_notes(roles: Mapping[str, ColumnRole]) -> list[str]:
    """One sentence per used column whose role was not plain (left-out columns have their own)."""
    return [
        f"Column '{name}' is used as {role.role}: {role.reason}."
        for name, role in roles.items()
        if role.role not in LEFT_OUT_ROLES and role.reason not in PLAIN_REASONS
    ]
