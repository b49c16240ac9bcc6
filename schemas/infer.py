"""Infer a pandera schema from a frame: types, nullability, ranges with a margin, categories."""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.safe_yaml import read_yaml_file
from tasks.errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")

# A string column with at most this many distinct values gets an isin check.
MAX_CATEGORIES = 50
# Inferred ranges are widened by this share of the observed span, so new data is not refused
# for being a little outside what one file happened to hold.
RANGE_MARGIN = 0.1


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def numeric_range(series: pd.Series, margin: float = RANGE_MARGIN) -> tuple[float, float] | None:
    """Observed [min, max] widened by margin of the span; None for an all-empty column."""
    # inf is refused by validation's own check; a range that includes it would say nothing.
    finite = series[np.isfinite(series.to_numpy(dtype=float, na_value=np.nan))]
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


def import_schema_file(path: Path) -> ModuleType:
    """Import a schema module from its file (a user's schemas/NAME.py need not be on sys.path)."""
    if not path.is_file():
        raise ConfigError(f"Schema file '{path}' does not exist.")
    module_name = f"tabpipe_user_schemas.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Schema file '{path}' cannot be imported.")
    module = importlib.util.module_from_spec(spec)
    # pandera resolves a DataFrameModel's annotations through sys.modules.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file may fail in any way; say so in one sentence
        sys.modules.pop(module_name, None)
        raise ConfigError(f"Schema file '{path}' fails to import: {error!r}.") from error
    return module


def import_schema_module(module_name: str) -> ModuleType:
    if module_name.endswith(".py"):
        return import_schema_file(Path(module_name))
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(f"Schema module '{module_name}' cannot be imported.") from error


def load_yaml_schema(path: Path) -> pa.DataFrameSchema:
    """A schema written by pandera's to_yaml: data, never code (read without aliases, bounded)."""
    serialized = read_yaml_file(path, "Schema file")
    try:
        schema = pa.DataFrameSchema.from_yaml(yaml_text_of(serialized))
    except Exception as error:  # pandera raises many types for a malformed schema
        problem = " ".join(str(error).split())[:200]
        raise ConfigError(
            f"Schema file '{path}' is not a pandera YAML schema ({problem})."
        ) from None
    if not isinstance(schema, pa.DataFrameSchema):
        raise ConfigError(f"Schema file '{path}' is not a pandera YAML schema.")
    return schema


def yaml_text_of(serialized: Any) -> str:
    """The already-checked mapping handed to pandera as YAML text (it parses with safe_load)."""
    import yaml

    if not isinstance(serialized, dict):
        raise ValueError("the file must be a mapping with 'columns'")
    return yaml.safe_dump(serialized, sort_keys=False)


def load_schema(reference: str) -> pa.DataFrameSchema:
    """A YAML schema file (pandera's to_yaml), or 'module:Name' / 'path/to/file.py:Name' of a
    DataFrameModel class or DataFrameSchema (Python: only from a project's config file)."""
    if reference.lower().endswith(YAML_SUFFIXES):
        return load_yaml_schema(Path(reference))
    module_name, _, attribute = reference.rpartition(":")
    if not module_name or not attribute:
        raise ConfigError(f"Schema '{reference}' must look like 'module:Name' or 'file.py:Name'.")
    module = import_schema_module(module_name)
    found: Any = getattr(module, attribute, None)
    if isinstance(found, pa.DataFrameSchema):
        return found
    if isinstance(found, type) and issubclass(found, pa.DataFrameModel):
        return found.to_schema()
    raise ConfigError(f"Schema '{reference}' names no pandera DataFrameModel or DataFrameSchema.")


def class_name_for(dataset_name: str) -> str:
    """'heart-disease' -> 'HeartDiseaseSchema'."""
    words = re.split(r"[^0-9a-zA-Z]+", dataset_name)
    name = "".join(word[:1].upper() + word[1:] for word in words if word) or "Data"
    return f"{'_' if name[0].isdigit() else ''}{name}Schema"


def outward_bounds(low: float, high: float) -> tuple[float, float]:
    """Round a range outward to a few decimals, so the contract stays readable and no narrower."""
    span = high - low
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 3
    scale = 10.0**decimals
    return (
        round(math.floor(low * scale) / scale, decimals),
        round(math.ceil(high * scale) / scale, decimals),
    )


def rounded_check(check: pa.Check) -> pa.Check:
    statistics = check.statistics or {}
    if check.name != "in_range" or "min_value" not in statistics:
        return check
    return pa.Check.in_range(*outward_bounds(statistics["min_value"], statistics["max_value"]))


def readable_schema(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """The inferred schema with its ranges rounded outward (readable, never narrower)."""
    updates = {
        name: {"checks": [rounded_check(check) for check in column.checks]}
        for name, column in schema.columns.items()
    }
    return schema.update_columns(updates) if updates else schema


def schema_yaml_source(schema: pa.DataFrameSchema, source: str) -> str:
    """A pandera YAML schema (data, never code: any column name works), to be tightened."""
    shown = json.dumps(source, ensure_ascii=True)  # a file name never breaks out of the comment
    header = (
        f"# Data contract for {shown}, inferred by `tabpipe init`: tighten it by hand.\n"
        "# Ranges are the observed ones widened by a margin; categories are the values seen.\n"
    )
    return header + str(readable_schema(schema).to_yaml())
