"""Reading a dataset file into a DataFrame, with one clear sentence for every way it can fail.

Supported: delimited text (UTF-8 with or without BOM, UTF-16 with BOM, cp1252, latin-1), the same
compressed as .gz or .zip, Parquet and Excel .xlsx. Column names are data: every name becomes a
string and is only ever used as a value (never as a keyword argument or in code)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.errors import DataError

PARQUET_SUFFIXES = {".parquet", ".pq"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
COMPRESSED_SUFFIXES: dict[str, Any] = {".gz": "gzip", ".zip": "zip"}
# What users hand over that is not a table we read; each gets the list of what is supported.
UNSUPPORTED_SUFFIXES = {
    ".json": "JSON",
    ".jsonl": "JSON lines",
    ".xls": "old Excel (.xls)",
    ".ods": "OpenDocument spreadsheet",
    ".png": "an image",
    ".jpg": "an image",
    ".jpeg": "an image",
    ".gif": "an image",
    ".pdf": "PDF",
    ".feather": "Feather",
    ".pkl": "a pickle",
    ".pickle": "a pickle",
}
SUPPORTED_FORMATS = (
    "CSV or other delimited text (UTF-8, UTF-16, cp1252, latin-1; also as .gz or .zip), "
    "Parquet (.parquet) and Excel (.xlsx)"
)
TEXT_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
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


def unsupported(path: Path, what: str) -> DataError:
    return DataError(f"File '{path}' is {what}; tabpipe reads {SUPPORTED_FORMATS}.")


def detect_encoding(sample: bytes, path: Path) -> str:
    """UTF-16 by its byte-order mark, else the first of UTF-8, cp1252, latin-1 that decodes the
    sample; binary files are refused."""
    if sample.startswith(UTF16_BOMS):
        return "utf-16"
    if b"\x00" in sample:
        raise unsupported(path, "not a text table (it contains binary data)")
    for encoding in TEXT_ENCODINGS:
        try:
            sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    raise DataError(f"File '{path}' is not text in UTF-8, UTF-16, cp1252 or latin-1.")


def detect_delimiter(text_sample: str) -> str:
    """The delimiter among , ; tab | that csv.Sniffer finds, else the comma."""
    try:
        return csv.Sniffer().sniff(text_sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def compression_of(path: Path) -> Any:
    return COMPRESSED_SUFFIXES.get(path.suffix.lower())


def raw_sample(path: Path, compression: str | None) -> bytes:
    """The first bytes of the (decompressed) text; a bad archive is a DataError."""
    try:
        if compression == "gzip":
            with gzip.open(path, "rb") as handle:
                return handle.read(SNIFF_BYTES)
        if compression == "zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DataError(
                        f"File '{path}' holds {len(members)} files; a zip must hold exactly one "
                        "CSV file."
                    )
                with archive.open(members[0]) as handle:
                    return handle.read(SNIFF_BYTES)
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            f"File '{path}' is not a readable {compression} archive ({error})."
        ) from error


def read_csv_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a delimited text file, detecting encoding and delimiter; returns notes on both."""
    compression = compression_of(path)
    sample = raw_sample(path, compression)
    if not sample.strip():
        raise DataError(f"File '{path}' is empty.")
    encoding = detect_encoding(sample, path)
    text = sample.decode(encoding, errors="ignore")
    delimiter = detect_delimiter(text)
    reject_duplicate_columns(first_row(text, delimiter, path), path)
    notes = []
    if encoding not in ("utf-8-sig", "utf-16"):
        notes.append(f"'{path.name}' is not UTF-8; read it as {encoding}.")
    if delimiter != ",":
        notes.append(f"'{path.name}' uses {delimiter!r} as delimiter; read it so.")
    try:
        frame = pd.read_csv(path, sep=delimiter, encoding=encoding, compression=compression)
    except pd.errors.EmptyDataError:
        raise DataError(f"File '{path}' has no columns (only a byte-order mark?).") from None
    except (pd.errors.ParserError, UnicodeError) as error:
        raise DataError(
            f"File '{path}' is not a readable table ({parser_detail(error)})."
        ) from error
    return frame, notes


def first_row(text: str, delimiter: str, path: Path) -> list[str]:
    """The header row of a text sample (newline="": a bare CR is a line end, as pandas reads)."""
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as error:
        raise DataError(f"File '{path}' is not a readable table ({error}).") from None


def parser_detail(error: Exception) -> str:
    """pandas' parser message on one line, without the C-engine preamble."""
    detail = " ".join(str(error).split()).removeprefix("Error tokenizing data. C error: ")
    return detail.rstrip(".")


def reject_duplicate_columns(header: Sequence[object], path: Path) -> None:
    """pandas silently renames a repeated column to 'name.1'; the user must hear about it."""
    seen: set[str] = set()
    for name in map(str, header):
        if name in seen:
            raise DataError(f"File '{path}' has the column '{name}' more than once.")
        seen.add(name)


def compact_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Low-cardinality string columns become categoricals (memory and speed at scale)."""
    compacted = frame.copy(deep=False)
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            distinct = series.nunique(dropna=True)
            if len(series) and distinct / len(series) <= CATEGORICAL_MAX_SHARE:
                # Set by position: a column name is data, never a keyword argument.
                compacted.isetitem(position, series.astype("category").array)
    return compacted


def is_nested(value: object) -> bool:
    return isinstance(value, list | tuple | dict | np.ndarray)


def drop_nested_columns(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Parquet list/struct/map columns hold no single value per cell: left out, with a note."""
    nested = [
        column
        for column in frame.columns
        if frame[column].dtype == object and frame[column].dropna().map(is_nested).any()
    ]
    notes = [
        f"Column '{column}' of '{path.name}' holds lists or records (nested values); it is left "
        "out."
        for column in nested
    ]
    return frame.drop(columns=nested), notes


def read_parquet_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"File '{path}' is not a readable Parquet file: {error}.") from error
    reject_duplicate_columns(list(frame.columns), path)
    return drop_nested_columns(frame, path)


def read_excel_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The first sheet of an .xlsx workbook (openpyxl); more sheets are named in a note."""
    try:
        sheets = pd.read_excel(path, sheet_name=None, engine="openpyxl")
    except Exception as error:  # openpyxl raises several unrelated types for a bad workbook
        raise DataError(f"File '{path}' is not a readable Excel workbook: {error}.") from error
    if not sheets:
        raise DataError(f"File '{path}' has no sheets.")
    (first, frame), *others = sheets.items()
    reject_duplicate_columns(list(frame.columns), path)
    notes = []
    if others:
        notes.append(f"'{path.name}' has {len(others) + 1} sheets; read the first, '{first}'.")
    return frame, notes


def string_column_names(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Every column name as a string (Parquet and Excel allow numbers): one kind of name
    everywhere, from the config to the saved model."""
    names = [str(column) for column in frame.columns]
    if all(isinstance(column, str) for column in frame.columns):
        return frame, []
    reject_duplicate_columns(names, path)
    renamed = frame.set_axis(names, axis="columns")
    return renamed, [f"Column names of '{path.name}' that were not text are read as text."]


def read_table(path: Path) -> LoadedTable:
    """Read CSV (any common delimiter and encoding, plain or compressed), Parquet or Excel
    .xlsx; every failure is a DataError."""
    if not path.exists():
        raise DataError(f"Data file '{path}' does not exist.")
    if path.is_dir():
        raise DataError(f"Data file '{path}' is a directory; name a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise DataError(f"File '{path}' is empty.")
    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_SUFFIXES:
        raise unsupported(path, UNSUPPORTED_SUFFIXES[suffix])
    if suffix in PARQUET_SUFFIXES:
        frame, notes = read_parquet_table(path)
    elif suffix in EXCEL_SUFFIXES:
        frame, notes = read_excel_table(path)
    else:
        frame, notes = read_csv_table(path)
    frame, name_notes = string_column_names(frame, path)
    if frame.shape[1] == 0:
        raise DataError(f"File '{path}' has no columns.")
    if frame.empty:
        raise DataError(f"File '{path}' has a header but no rows.")
    return LoadedTable(frame, path, file_sha256(path), [*notes, *name_notes])
