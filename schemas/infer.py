"""Infer a pandera schema from a frame: types, nullability, ranges with a margin, categories."""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd
import pandera.pandas as pa

# A string column with at most this many distinct values gets an isin check.
MAX_CATEGORIES = 50
# Inferred ranges are widened by this share of the observed span, so new data is not refused
# for being a little outside what one file happened to hold.
RANGE_MARGIN = 0.1


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def numeric_range(series: pd.Series, margin: float = RANGE_MARGIN) -> tuple[float, float] | None:
    """Observed [min, max] widened by margin of the span; None for an all-empty column."""
    finite = series[pd.notna(series)]
    if finite.empty:
        return None
    low, high = float(finite.min()), float(finite.max())
    pad = (high - low) * margin
    return low - pad, high + pad


def category_values(series: pd.Series) -> list[str] | None:
    values = sorted(str(value) for value in series.dropna().unique())
    return values if len(values) <= MAX_CATEGORIES else None


def infer_column(series: pd.Series) -> pa.Column:
    """One column's contract from what the data shows."""
    nullable = bool(series.isna().any())
    if is_numeric(series):
        bounds = numeric_range(series)
        checks = [] if bounds is None else [pa.Check.in_range(*bounds)]
        return pa.Column(float, checks, nullable=nullable, coerce=True)
    categories = category_values(series)
    checks = [] if categories is None else [pa.Check.isin(categories)]
    return pa.Column(str, checks, nullable=nullable, coerce=True)


def infer_schema(frame: pd.DataFrame, name: str = "InferredSchema") -> pa.DataFrameSchema:
    """A schema that the frame passes, to be tightened by a person."""
    columns = {str(column): infer_column(frame[column]) for column in frame.columns}
    return pa.DataFrameSchema(columns, strict=True, name=name)


def load_schema(reference: str) -> pa.DataFrameSchema:
    """'module:Name' of a DataFrameModel class or a DataFrameSchema object."""
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        raise ValueError(f"Schema '{reference}' must look like 'module:Name'.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(f"Schema module '{module_name}' cannot be imported.") from error
    found: Any = getattr(module, attribute, None)
    if isinstance(found, pa.DataFrameSchema):
        return found
    if isinstance(found, type) and issubclass(found, pa.DataFrameModel):
        return found.to_schema()
    raise ValueError(f"Schema '{reference}' names no pandera DataFrameModel or DataFrameSchema.")
