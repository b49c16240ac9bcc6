"""Reading a dataset file into a DataFrame, with one clear sentence for every way it can fail."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tasks.errors import DataError

PARQUET_SUFFIXES = {".parquet", ".pq"}
TEXT_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
SNIFF_BYTES = 64 * 1024
# Strings with few distinct values become categoricals: less memory, faster encoding.
CATEGORICAL_MAX_SHARE = 0.5


@dataclass(frozen=True)
class LoadedTable:
    frame: pd.DataFrame
    path: Path
    sha256: str
    notes: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_encoding(sample: bytes, path: Path) -> str:
    """The first of UTF-8, cp1252, latin-1 that decodes the sample; binary files are refused."""
    if b"\x00" in sample:
        raise DataError(f"File '{path}' is not a text table (it contains binary data).")
    for encoding in TEXT_ENCODINGS:
        try:
            sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    raise DataError(f"File '{path}' is not text in UTF-8, cp1252 or latin-1.")


def detect_delimiter(text_sample: str) -> str:
    """The delimiter among , ; tab | that csv.Sniffer finds, else the comma."""
    try:
        return csv.Sniffer().sniff(text_sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_csv_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a delimited text file, detecting encoding and delimiter; returns notes on both."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample.strip():
        raise DataError(f"File '{path}' is empty.")
    encoding = detect_encoding(sample, path)
    delimiter = detect_delimiter(sample.decode(encoding, errors="ignore"))
    reject_duplicate_columns(read_header(path, encoding, delimiter), path)
    notes = []
    if encoding != "utf-8-sig":
        notes.append(f"'{path.name}' is not UTF-8; read it as {encoding}.")
    if delimiter != ",":
        notes.append(f"'{path.name}' uses {delimiter!r} as delimiter; read it so.")
    try:
        frame = pd.read_csv(path, sep=delimiter, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise DataError(f"File '{path}' has no columns (only a byte-order mark?).") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(
            f"File '{path}' is not a readable table ({parser_detail(error)})."
        ) from error
    return frame, notes


def parser_detail(error: Exception) -> str:
    """pandas' parser message on one line, without the C-engine preamble."""
    detail = " ".join(str(error).split()).removeprefix("Error tokenizing data. C error: ")
    return detail.rstrip(".")


def reject_duplicate_columns(header: list[str], path: Path) -> None:
    """pandas silently renames a repeated column to 'name.1'; the user must hear about it."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"File '{path}' has the column '{name}' more than once.")
        seen.add(name)


def read_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def compact_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Low-cardinality string columns become categoricals (memory and speed at scale)."""
    converted = {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            distinct = series.nunique(dropna=True)
            if len(series) and distinct / len(series) <= CATEGORICAL_MAX_SHARE:
                converted[column] = series.astype("category")
    return frame.assign(**converted) if converted else frame


def read_table(path: Path) -> LoadedTable:
    """Read CSV (any common delimiter and encoding) or Parquet; every failure is a DataError."""
    if not path.exists():
        raise DataError(f"Data file '{path}' does not exist.")
    if path.is_dir():
        raise DataError(f"Data file '{path}' is a directory; name a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise DataError(f"File '{path}' is empty.")
    notes: list[str] = []
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except Exception as error:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"File '{path}' is not a readable Parquet file: {error}.") from error
    else:
        frame, notes = read_csv_table(path)
    if frame.shape[1] == 0:
        raise DataError(f"File '{path}' has no columns.")
    if frame.empty:
        raise DataError(f"File '{path}' has a header but no rows.")
    return LoadedTable(frame, path, file_sha256(path), notes)
