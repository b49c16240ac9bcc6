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
        compression_of,
        detect_delimiter,
        detect_encoding,
        first_row,
        raw_sample,
        reject_duplicate_columns,
    )

    sample = raw_sample(path, compression_of(path))  # gzip and zip: the decompressed text
    if not sample.strip():
        raise DataError(f"File '{path}' is empty.")
    encoding = detect_encoding(sample, path)
    text = sample.decode(encoding, errors="ignore")
    header = first_row(text, detect_delimiter(text), path)
    reject_duplicate_columns(header, path)
    return header


def excel_columns(path: Path) -> list[str]:
    import pandas as pd

    try:
        return [str(c) for c in pd.read_excel(path, nrows=0, engine="openpyxl").columns]
    except Exception as error:  # openpyxl raises several unrelated types for a bad file
        raise DataError(f"File '{path}' is not a readable Excel .xlsx file: {error}.") from error


def header_columns(path: Path) -> list[str]:
    """The column names in the file's header (delimited text, plain or compressed; Parquet;
    Excel); a format tabpipe does not read is said here already."""
    check_file_access(path)
    # pandas: only once the file is there
    from tasks.data.read import (
        EXCEL_SUFFIXES,
        PARQUET_SUFFIXES,
        UNSUPPORTED_SUFFIXES,
        unsupported,
    )

    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_SUFFIXES:
        raise unsupported(path, UNSUPPORTED_SUFFIXES[suffix])
    if suffix in PARQUET_SUFFIXES:
        return parquet_columns(path)
    if suffix in EXCEL_SUFFIXES:
        return excel_columns(path)
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


def has_rows(path: Path, rows: int, *, chunk_bytes: int = 1 << 20) -> bool:
    """Does the file surely hold at least `rows` data rows? Counted cheaply: a plain text file's
    line breaks up to that many, a Parquet file's metadata; False when it cannot be told cheaply
    (compressed text, Excel): a guess that errs towards "small"."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows) >= rows
    if suffix not in (".csv", ".tsv", ".txt"):
        return False
    line_breaks = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            line_breaks += chunk.count(b"\n")
            if line_breaks > rows:  # the header's line break, then one per row
                return True
    return False
