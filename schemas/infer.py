"""Infer a pandera schema from a frame: types, nullability, ranges with a margin, categories."""

from __future__ import annotations

import importlib
import importlib.util
import json
import keyword
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from tasks.errors import ConfigError

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


def load_schema(reference: str) -> pa.DataFrameSchema:
    """'module:Name' or 'path/to/file.py:Name' of a DataFrameModel class or DataFrameSchema."""
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


# Names a generated DataFrameModel body already uses: its Config class, the module names it calls
# (pa.Field, Series[...]) and the model's own methods.
RESERVED_ATTRIBUTES = {"Config", "pa", "Series", *dir(pa.DataFrameModel)}


def attribute_names(columns: list[str]) -> dict[str, str]:
    """A distinct Python identifier per column; columns that are not identifiers get an alias."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        # ASCII only: Python folds some letters in identifiers ('º' becomes 'o', NFKC), so a
        # unicode attribute could name a different column than the one it stands for.
        base = re.sub(r"[^0-9A-Za-z_]", "_", column).strip("_") or "column"
        # pandera ignores attributes that start with '_'; keywords cannot be attributes.
        if base[0].isdigit():
            base = f"column_{base}"
        if keyword.iskeyword(base) or base in RESERVED_ATTRIBUTES:
            base = f"{base}_"
        name, counter = base, 2
        while name in taken:
            name, counter = f"{base}_{counter}", counter + 1
        taken.add(name)
        names[column] = name
    return names


def outward_bounds(low: float, high: float) -> tuple[float, float]:
    """Round a range outward to a few decimals, so the contract stays readable and no narrower."""
    span = high - low
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 3
    scale = 10.0**decimals
    return (
        round(math.floor(low * scale) / scale, decimals),
        round(math.ceil(high * scale) / scale, decimals),
    )


def python_literal(value: str | list[str]) -> str:
    """Strings in double quotes, as ruff format writes them (JSON string syntax is Python's)."""
    return json.dumps(value, ensure_ascii=False)


def field_arguments(column: pa.Column, alias: str | None) -> list[str]:
    """The pa.Field(...) arguments that reproduce an inferred column's checks."""
    arguments = []
    for check in column.checks:
        statistics = check.statistics
        if check.name == "in_range":
            low, high = outward_bounds(statistics["min_value"], statistics["max_value"])
            arguments += [f"ge={low!r}", f"le={high!r}"]
        elif check.name == "isin":
            arguments.append(f"isin={python_literal(sorted(statistics['allowed_values']))}")
    arguments.append(f"nullable={column.nullable}")
    if alias is not None:
        arguments.append(f"alias={python_literal(alias)}")
    return arguments


def schema_module_source(schema: pa.DataFrameSchema, class_name: str, source: str) -> str:
    """Python source of a DataFrameModel equal in checks to an inferred schema, to be tightened."""
    names = attribute_names(list(schema.columns))
    lines = [
        f'"""Data contract for {source}, inferred by `tabpipe init`: tighten it by hand.',
        "",
        "Ranges are the observed ones widened by a margin; categories are the values seen.",
        '"""',
        "",
        "import pandera.pandas as pa",
        "from pandera.typing import Series",
        "",
        "",
        f"class {class_name}(pa.DataFrameModel):",
    ]
    for column_name, column in schema.columns.items():
        attribute = names[column_name]
        python_type = "float" if is_float_column(column) else "str"
        alias = None if attribute == column_name else column_name
        arguments = ", ".join(field_arguments(column, alias))
        lines.append(f"    {attribute}: Series[{python_type}] = pa.Field({arguments})")
    lines += ["", "    class Config:", "        coerce = True", "        strict = True", ""]
    return "\n".join(lines)


def is_float_column(column: pa.Column) -> bool:
    return str(column.dtype).startswith("float")
