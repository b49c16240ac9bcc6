"""Every format a user hands over, as a real file written by the test."""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.infer import infer_schema
from tasks.data.read import read_table
from tasks.data.validate import validate_frame
from tasks.errors import DataError, ValidationFailed

CSV_TEXT = "name,città,amount\nÉlodie,Zürich,1.5\nJosé,Málaga,2.0\nZoë,Köln,\n"


def expected_frame(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["name", "città", "amount"]
    assert frame["name"].tolist() == ["Élodie", "José", "Zoë"]
    assert frame["città"].tolist() == ["Zürich", "Málaga", "Köln"]
    assert frame["amount"].isna().tolist() == [False, False, True]


WRITERS: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    "utf-8": ("t.csv", lambda p: p.write_text(CSV_TEXT, encoding="utf-8"), []),
    "utf-8 with BOM": ("t.csv", lambda p: p.write_text(CSV_TEXT, encoding="utf-8-sig"), []),
    "utf-16 with BOM": ("t.csv", lambda p: p.write_text(CSV_TEXT, encoding="utf-16"), []),
    "cp1252": ("t.csv", lambda p: p.write_bytes(CSV_TEXT.encode("cp1252")), ["cp1252"]),
    "gzip": ("t.csv.gz", lambda p: p.write_bytes(gzip.compress(CSV_TEXT.encode())), []),
    "zip": ("t.zip", lambda p: write_zip(p, CSV_TEXT.encode()), []),
}


def write_zip(path: Path, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inside.csv", data)


@pytest.mark.parametrize(
    "kind", ["utf-8", "utf-8 with BOM", "utf-16 with BOM", "cp1252", "gzip", "zip"]
)
def test_text_tables_in_every_encoding_and_compression(kind: str, tmp_path: Path) -> None:
    name, write, note_words = WRITERS[kind]
    path = tmp_path / name
    write(path)
    table = read_table(path)
    expected_frame(table.frame)
    for word in note_words:
        assert any(word in note for note in table.notes)


def test_latin_1_text_that_cp1252_cannot_decode(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    # 0x81 and 0x8d are undefined in cp1252: only latin-1 decodes this file.
    path.write_bytes("a,b\n\x81x,é\n\x8dy,ü\n".encode("latin-1"))
    table = read_table(path)
    assert table.frame["b"].tolist() == ["é", "ü"]
    assert any("latin-1" in note for note in table.notes)


def test_excel_workbook_first_sheet_with_a_note_about_the_others(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    first = pd.DataFrame(
        {
            "name": ["Élodie", "José", "Zoë"],
            "città": ["Zürich", "Málaga", "Köln"],
            "amount": [1.5, 2.0, np.nan],
        }
    )
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        first.to_excel(writer, sheet_name="data", index=False)
        first.to_excel(writer, sheet_name="copy", index=False)
    table = read_table(path)
    expected_frame(table.frame)
    assert any("read the first, 'data'" in note for note in table.notes)


def test_parquet_nested_columns_are_left_out_and_numeric_names_become_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested.parquet"
    arrow = pa.table(
        {
            "amount": [1.0, 2.0, 3.0],
            "tags": [["a"], ["b", "c"], []],
            "where": [{"x": 1}, {"x": 2}, {"x": 3}],
            "2024": [5, 6, 7],
        }
    )
    pq.write_table(arrow, path)
    table = read_table(path)
    assert list(table.frame.columns) == ["amount", "2024"]
    assert all(isinstance(c, str) for c in table.frame.columns)
    assert any("'tags'" in note and "nested" in note for note in table.notes)
    assert any("'where'" in note for note in table.notes)


def test_integer_column_names_from_a_frame_become_text(tmp_path: Path) -> None:
    path = tmp_path / "numbers.parquet"
    pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]}).rename(columns=str).to_parquet(path)
    assert list(read_table(path).frame.columns) == ["0", "1"]


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("data.json", b'[{"a": 1}]', "JSON"),
        ("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "old Excel (.xls)"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "an image"),
        ("blob.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a text table"),
    ],
)
def test_unsupported_formats_get_one_sentence_listing_the_supported_ones(
    tmp_path: Path, name: str, content: bytes, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_table(path)
    message = str(error.value)
    assert what in message
    assert "Parquet (.parquet) and Excel (.xlsx)" in message
    assert "\n" not in message


def test_a_zip_with_two_files_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    with pytest.raises(DataError, match="holds 2 files; a zip must hold exactly one CSV file"):
        read_table(path)


def test_overflowing_numbers_are_named_not_a_scikit_learn_nan_error(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("x,y,label\n1e308,1,a\n2,inf,b\n3,3,a\n")
    table = read_table(path)
    with pytest.raises(ValidationFailed) as failure:
        validate_frame(table.frame, infer_schema(table.frame), str(path))
    message = str(failure.value)
    assert "1 infinite value(s) in column(s) 'y'" in message
    assert "1 value(s) beyond ±1e+150 (too large to compute with) in column(s) 'x'" in message
