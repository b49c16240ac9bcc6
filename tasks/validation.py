"""Validate before anything learns: pandera, lazily, so every failure is seen at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from tasks.data import DataError, compact_strings

FAILURE_COLUMNS = ["column", "check", "failure_case", "index"]


class ValidationFailed(DataError):
    """The data broke its schema; failure_cases lists every failing check and row."""

    def __init__(self, message: str, failure_cases: pd.DataFrame) -> None:
        super().__init__(message)
        self.failure_cases = failure_cases


def infinite_value_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells holding +/-inf: no estimator can use them and no range check names them clearly."""
    rows = []
    for column in frame.select_dtypes("number").columns:
        infinite = np.isinf(frame[column].to_numpy(dtype=float, na_value=np.nan))
        for index in frame.index[infinite]:
            rows.append(
                {
                    "column": column,
                    "check": "finite",
                    "failure_case": frame.at[index, column],
                    "index": index,
                }
            )
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def summarise_failures(failure_cases: pd.DataFrame, source: str) -> str:
    """One sentence: how many checks failed, on which columns."""
    columns = [str(c) for c in dict.fromkeys(failure_cases["column"].fillna("(table)"))]
    shown = ", ".join(f"'{c}'" for c in columns[:6]) + (" and more" if len(columns) > 6 else "")
    return (
        f"Data '{source}' failed validation: {len(failure_cases)} failing value(s) or check(s) in "
        f"column(s) {shown}; see validation/failure_cases.csv."
    )


def validate_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str) -> pd.DataFrame:
    """The frame coerced to the schema, low-cardinality strings as categoricals; or
    ValidationFailed with every failure case."""
    try:
        validated = schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases.reindex(columns=FAILURE_COLUMNS)
        raise ValidationFailed(summarise_failures(cases, source), cases) from None
    infinite = infinite_value_cases(validated)
    if not infinite.empty:
        raise ValidationFailed(summarise_failures(infinite, source), infinite)
    return compact_strings(validated)


def write_failure_cases(failure_cases: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    failure_cases.to_csv(path, index=False)
    return path
