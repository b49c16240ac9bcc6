"""Hostile or careless configs: every case is one sentence naming the key or path, exit 2,
before Prefect starts, and nothing named by a --set or a form is imported (no code runs)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli.main import main
from tests.conftest import make_frame

ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    make_frame(60).to_csv(path, index=False)
    return path


def train(data: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--target", "label", *extra]


def one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in-process: exit 2 and exactly one line on stderr, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_alias_bomb_in_a_config_file_is_refused(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bomb.yaml"
    grid = ALIAS_BOMB.replace("\n", "\n    ").replace("a: &a", "max_depth: &a", 1)
    config.write_text(
        f"data: {data}\ntarget: label\ngrids:\n  random_forest:\n    {grid}\n".replace(
            "\n    b:", "\n    min_samples_leaf:"
        )
    )
    err = one_error(capsys, ["train", str(config)])
    assert f"Config file '{config}' is not valid YAML" in err
    assert "anchors and aliases are not allowed" in err


def test_an_alias_bomb_through_set_is_refused(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = "[&a [1, 1, 1, 1], [*a, *a, *a, *a]]"
    err = one_error(capsys, train(data, "--set", f"grids.random_forest.max_depth={bomb}"))
    assert "--set 'grids.random_forest.max_depth=" in err
    assert "anchors and aliases are not allowed" in err


def test_a_huge_config_file_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "huge.yaml"
    config.write_text("data: x.csv\ntarget: y\n# " + "x" * 2_000_000 + "\n")
    err = one_error(capsys, ["train", str(config)])
    assert f"Config file '{config}' is larger than 1,000,000 bytes" in err


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("split.cv_folds=[3", "--set 'split.cv_folds=[3': the value is not valid YAML (line 1"),
        ("target.x=1", "key 'target' holds a value, not a section, so 'target.x' cannot be set"),
        ("split..cv_folds=3", "names no key"),
        ("seed=-1", "key 'seed' input should be greater than or equal to 0 (got -1)"),
        (f"seed={2**32}", "key 'seed' input should be less than or equal to 4294967295"),
        ("name=" + "x" * 5000, "key 'name' string should have at most 100 characters"),
        ("models=" + "y" * 5000, "(5002 characters)"),
    ],
)
def test_set_errors_are_one_sentence_naming_the_key(
    data: Path, capsys: pytest.CaptureFixture[str], assignment: str, expected: str
) -> None:
    err = one_error(capsys, train(data, "--set", assignment))
    assert expected in err
    assert len(err) < 600


def test_a_directory_as_data_is_refused_before_prefect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    err = one_error(capsys, train(folder, "--set", f"runs_dir={tmp_path / 'runs'}"))
    assert f"Data file '{folder}' is a directory" in err
    assert not (tmp_path / "runs").exists()  # no run was started


def test_a_runs_dir_that_is_a_file_is_refused(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    runs.write_text("not a folder")
    err = one_error(capsys, train(data, "--set", f"runs_dir={runs}"))
    assert f"runs_dir '{runs}' is a file, not a folder" in err
    nested = runs / "inner"
    err = one_error(capsys, train(data, "--set", f"runs_dir={nested}"))
    assert f"runs_dir '{nested}' cannot be created: '{runs}' is a file" in err


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A real read-only file system (a tmpfs mounted ro), where the machine allows mounting."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_runs_dir_on_a_read_only_file_system_is_refused(
    read_only_folder: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = read_only_folder / "runs"
    err = one_error(capsys, train(data, "--set", f"runs_dir={runs}"))
    assert f"runs_dir '{runs}' is not writable ('{read_only_folder}' is read-only)" in err


def evil_schema(folder: Path, marker: Path) -> Path:
    """A Python file that leaves a marker when imported."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "evil.py"
    path.write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\nX = 1\n")
    return path


def test_a_python_schema_from_set_is_never_imported(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    evil = evil_schema(tmp_path / "elsewhere", marker)
    err = one_error(capsys, train(data, "--set", f"schema={evil}:X"))
    assert "must be a YAML schema file" in err
    err = one_error(capsys, train(data, "--set", "schema=this:Foo"))
    assert "must be a YAML schema file" in err
    assert not marker.exists()


def test_a_python_schema_outside_the_project_is_never_imported(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    evil = evil_schema(tmp_path / "elsewhere", marker)
    project = tmp_path / "project" / "configs"
    project.mkdir(parents=True)
    config = project / "c.yaml"
    config.write_text(f"data: {data}\ntarget: label\nschema: {evil}:X\n")
    err = one_error(capsys, ["train", str(config)])
    assert f"Schema file '{evil}'" in err and "lies outside the project" in err
    config.write_text(f"data: {data}\ntarget: label\nschema: this:Foo\n")
    err = one_error(capsys, ["train", str(config)])
    assert "Schema 'this:Foo' names no module file inside the project" in err
    assert not marker.exists()


def test_a_yaml_schema_from_set_is_data(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("schema_type: dataframe\ncolumns: &c {x1: {dtype: float64}}\nx: *c\n")
    err = one_error(capsys, ["validate", "--data", str(data), "--schema", str(schema)])
    assert f"Schema file '{schema}' is not valid YAML" in err and "aliases" in err


def test_names_with_markup_and_emoji_codes_are_shown_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Column names are data: rich markup ('[/b]') or emoji codes (':x:') are neither
    interpreted (a closing tag used to crash the CLI) nor turned into symbols."""
    odd = "[/b] :x: <i>"
    path = tmp_path / "odd.csv"
    frame = make_frame(40).rename(columns={"x1": odd})
    frame.loc[0, odd] = float("inf")
    frame.to_csv(path, index=False)
    clean = tmp_path / "clean.csv"
    make_frame(40).to_csv(clean, index=False)
    err = one_error(capsys, ["train", "--data", str(clean), "--target", "[/oops] :x:"])
    assert "Target column '[/oops] :x:' is not in" in err
    assert main(["validate", "--data", str(path)]) == 2
    shown = capsys.readouterr().err
    assert f"1 infinite value(s) in column(s) '{odd}'" in shown
    assert f"│ {odd} │" in shown
