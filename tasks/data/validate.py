"""Validate before anything learns: pandera, lazily, so every failure is seen at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from tasks.data.read import compact_strings
from tasks.errors import ValidationFailed

FAILURE_COLUMNS = ["column", "check", "failure_case", "index"]
# pandera's checks that a column is there (or is allowed); failure_case holds its name.
FINITE_CHECK = "finite"
OVERFLOW_CHECK = "overflow"
# Beyond this a square (variances, distances) overflows float64: as unusable as infinity.
OVERFLOW_LIMIT = 1e150
COLUMN_CHECKS = ("column_in_dataframe", "column_in_schema")


def infinite_value_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells holding +/-inf or a number so large that arithmetic on it overflows (1e308): no
    estimator can use them and no range check names them clearly."""
    rows = []
    numeric = frame.select_dtypes("number")
    for position in range(numeric.shape[1]):
        series = numeric.iloc[:, position]
        values = series.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            infinite = np.isinf(values)
            overflowing = ~infinite & (np.abs(values) > OVERFLOW_LIMIT)
        for check, mask in ((FINITE_CHECK, infinite), (OVERFLOW_CHECK, overflowing)):
            rows += [
                {"column": series.name, "check": check, "failure_case": value, "index": index}
                for index, value in zip(series.index[mask], values[mask], strict=True)
            ]
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def quoted_list(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def summarise_failures(failure_cases: pd.DataFrame, source: str) -> str:
    """One sentence: which columns are missing or unexpected, which hold failing values."""
    missing = failure_cases["check"].eq(COLUMN_CHECKS[0])
    unexpected = failure_cases["check"].eq(COLUMN_CHECKS[1])
    parts = []
    if missing.any():
        names = [str(c) for c in dict.fromkeys(failure_cases.loc[missing, "failure_case"])]
        parts.append(f"missing column(s) {quoted_list(names)}")
    if unexpected.any():
        names = [str(c) for c in dict.fromkeys(failure_cases.loc[unexpected, "failure_case"])]
        parts.append(f"column(s) {quoted_list(names)} not in the schema")
    infinite = failure_cases["check"].eq(FINITE_CHECK)
    if infinite.any():
        columns = [str(c) for c in dict.fromkeys(failure_cases.loc[infinite, "column"])]
        parts.append(f"{int(infinite.sum())} infinite value(s) in column(s) {quoted_list(columns)}")
    overflowing = failure_cases["check"].eq(OVERFLOW_CHECK)
    if overflowing.any():
        columns = [str(c) for c in dict.fromkeys(failure_cases.loc[overflowing, "column"])]
        parts.append(
            f"{int(overflowing.sum())} value(s) beyond ±{OVERFLOW_LIMIT:g} (too large to compute "
            f"with) in column(s) {quoted_list(columns)}"
        )
    values = failure_cases.loc[~missing & ~unexpected & ~infinite & ~overflowing]
    if not values.empty:
        columns = [str(c) for c in dict.fromkeys(values["column"].fillna("(table)"))]
        parts.append(
            f"{len(values)} failing value(s) or check(s) in column(s) {quoted_list(columns)}"
        )
    return f"Data '{source}' failed validation: {'; '.join(parts)}."


def name_column_checks(failure_cases: pd.DataFrame) -> pd.DataFrame:
    """A missing or unexpected column is reported on the schema; name the column instead."""
    about_columns = failure_cases["check"].isin(COLUMN_CHECKS)
    named = failure_cases["column"].where(~about_columns, failure_cases["failure_case"])
    return failure_cases.assign(column=named)


def validate_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str) -> pd.DataFrame:
    """The frame coerced to the schema, low-cardinality strings as categoricals; or
    ValidationFailed with every failure case (infinite values named as such)."""
    infinite = infinite_value_cases(frame)
    try:
        # A shallow copy coerced in place: copy-on-write leaves the loaded table as it was and
        # copies only the columns coercion changes (pandera's own copy took them all).
        validated = schema.validate(frame.copy(deep=False), lazy=True, inplace=True)
    except pandera.errors.SchemaErrors as errors:
        cases = name_column_checks(errors.failure_cases.reindex(columns=FAILURE_COLUMNS))
        cases = pd.concat([cases[~cases["failure_case"].map(is_unusable_number)], infinite])
        raise ValidationFailed(summarise_failures(cases, source), cases) from None
    if not infinite.empty:
        raise ValidationFailed(summarise_failures(infinite, source), infinite)
    return compact_strings(validated)


def is_unusable_number(value: object) -> bool:
    """A failure case that is +/-inf or overflowing (reported once, by those checks)."""
    if not isinstance(value, float | np.floating):
        return False
    return bool(np.isinf(value) or abs(float(value)) > OVERFLOW_LIMIT)


def write_failure_cases(failure_cases: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    failure_cases.to_csv(path, index=False)
    return path
