"""What can be checked of a data file from its first bytes: that it is there, readable, a known
format, and that its header names the target. Answered in well under a second, before a run
(or a server) starts; reading the whole table is `tasks.data.read`'s job."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from tasks.errors import DataError

MAX_COLUMNS_LISTED = 30


def check_file_access(path: Path) -> None:
    """There, a file, readable and not empty: each said in one sentence naming the path."""
    if not path.exists():
        raise DataError(f"Data file '{path}' does not exist.")
    if path.is_dir():
        raise DataError(f"Data file '{path}' is a directory; name a CSV or Parquet file.")
    if not os.access(path, os.R_OK):
        raise DataError(f"Data file '{path}' is not readable (check its permissions).")
    if path.stat().st_size == 0:
        raise DataError(f"File '{path}' is empty.")


def parquet_columns(path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"File '{path}' is not a readable Parquet file: {error}.") from error


def text_columns(path: Path) -> list[str]:
    from tasks.data.read import (
        SNIFF_BYTES,
        detect_delimiter,
        detect_encoding,
        read_header,
        reject_duplicate_columns,
    )

    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample.strip():
        raise DataError(f"File '{path}' is empty.")
    encoding = detect_encoding(sample, path)
    delimiter = detect_delimiter(sample.decode(encoding, errors="ignore"))
    header = read_header(path, encoding, delimiter)
    reject_duplicate_columns(header, path)
    return header


def header_columns(path: Path) -> list[str]:
    """The column names in the file's header (CSV-like text or Parquet)."""
    check_file_access(path)
    from tasks.data.read import PARQUET_SUFFIXES  # pandas: only once the file is there

    if path.suffix.lower() in PARQUET_SUFFIXES:
        return parquet_columns(path)
    return text_columns(path)


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate a typo most likely meant (difflib; case-insensitive), if any is close."""
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def columns_listed(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:MAX_COLUMNS_LISTED])
    more = len(columns) - MAX_COLUMNS_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def check_target_in_header(path: Path, target: str) -> list[str]:
    """The header's columns; a target not among them is a DataError that lists them and names
    the closest one."""
    columns = header_columns(path)
    if not target or target in columns:
        return columns
    suggestion = closest(target, columns)
    hint = f" Did you mean '{suggestion}'?" if suggestion else ""
    raise DataError(
        f"Target column '{target}' is not in '{path}'.{hint} "
        f"Its columns: {columns_listed(columns)}."
    )
