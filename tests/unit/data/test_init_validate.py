"""`tabpipe init` writes a data contract that a person can tighten and that trains as is;
`tabpipe validate` checks a file against it without training."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from flows.cli.main import main
from schemas.infer import infer_schema, load_schema, schema_yaml_source
from tasks.checks import load_config
from tasks.data.contracts import write_starter_files
from tasks.data.validate import validate_frame
from tasks.errors import ConfigError, ValidationFailed
from tests.conftest import make_frame


def odd_frame() -> pd.DataFrame:
    """Column names that are not Python identifiers, a keyword, and a gap."""
    return pd.DataFrame(
        {
            "bill length": [10.0, 12.5, np.nan, 20.0],
            "class": ["a", "b", "a", "b"],
            "2nd": [1, 2, 3, 4],
        }
    )


def project(tmp_path: Path, n_rows: int = 80) -> Path:
    """A user's project: data/tiny.csv, no configs or schemas yet."""
    (tmp_path / "data").mkdir()
    make_frame(n_rows).to_csv(tmp_path / "data" / "tiny.csv", index=False)
    return tmp_path


def init_args(root: Path) -> list[str]:
    return [
        "init",
        str(root / "data" / "tiny.csv"),
        "--target",
        "label",
        "--configs-dir",
        str(root / "configs"),
        "--schemas-dir",
        str(root / "schemas"),
    ]


def test_generated_schema_holds_the_inferred_contract(tmp_path: Path) -> None:
    frame = odd_frame()
    written = tmp_path / "odd.yaml"
    written.write_text(schema_yaml_source(infer_schema(frame, "OddSchema"), "odd.csv"))
    schema = load_schema(str(written))
    assert list(schema.columns) == ["bill length", "class", "2nd"]
    assert schema.columns["bill length"].nullable
    assert not schema.columns["class"].nullable
    validate_frame(frame, schema, "odd.csv")  # the file it came from passes
    outside = frame.assign(**{"bill length": [10.0, 99.0, 12.0, 13.0], "class": ["a", "c"] * 2})
    with pytest.raises(ValidationFailed) as failure:
        validate_frame(outside, schema, "new.csv")
    cases = failure.value.failure_cases
    assert set(zip(cases["column"], cases["failure_case"].astype(str), strict=True)) == {
        ("bill length", "99.0"),
        ("class", "c"),
    }


def test_ranges_have_a_margin_around_what_was_seen(tmp_path: Path) -> None:
    frame = odd_frame()
    written = tmp_path / "odd.yaml"
    written.write_text(schema_yaml_source(infer_schema(frame, "OddSchema"), "odd.csv"))
    schema = load_schema(str(written))
    # observed 10..20: a value 0.5 beyond either end is inside the 10% margin
    validate_frame(frame.assign(**{"bill length": [9.5, 20.5, 15.0, 11.0]}), schema, "x")


def test_init_writes_a_config_that_loads_and_will_not_overwrite(tmp_path: Path) -> None:
    root = project(tmp_path)
    files = write_starter_files(
        root / "data" / "tiny.csv", "label", root / "configs", root / "schemas"
    )
    assert files.config == root / "configs" / "tiny.yaml"
    text = files.config.read_text()
    assert "data: data/tiny.csv" in text  # relative to the project root: the project can move
    assert "schema: schemas/tiny.yaml" in text
    config = load_config(files.config)
    assert config.data == root / "data" / "tiny.csv"
    assert config.schema_ref == str(root / "schemas" / "tiny.yaml")
    assert list(load_schema(config.schema_ref).columns) == ["x1", "x2", "colour", "label"]
    # the inferred roles are written out, to be overridden by editing them
    assert config.columns == {"x1": "numeric", "x2": "numeric", "colour": "categorical"}
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        write_starter_files(root / "data" / "tiny.csv", "label", root / "configs", root / "schemas")


def test_a_dotted_schema_module_in_the_project_is_found_there(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "schemas").mkdir()
    module = root / "schemas" / "tiny.py"
    module.write_text(
        "import pandera.pandas as pa\n"
        "TinySchema = pa.DataFrameSchema({'x1': pa.Column(float, nullable=True)})\n"
    )
    dotted = root / "configs" / "dotted.yaml"
    dotted.parent.mkdir()
    dotted.write_text("data: data/tiny.csv\ntarget: label\nschema: schemas.tiny:TinySchema\n")
    config = load_config(dotted)
    assert config.schema_ref == f"{module}:TinySchema"


@pytest.mark.parametrize("clash", ["Config", "class", "schema", "columns", "name", "dtype"])
def test_init_writes_a_schema_that_passes_its_own_data_for_any_column_name(
    tmp_path: Path, clash: str
) -> None:
    root = project(tmp_path)
    frame = make_frame(80).rename(columns={"x1": clash, "colour": 'we"ird <b>\tname'})
    frame.to_csv(root / "data" / "tiny.csv", index=False)
    files = write_starter_files(
        root / "data" / "tiny.csv", "label", root / "configs", root / "schemas"
    )
    schema = load_schema(str(load_config(files.config).schema_ref))
    assert list(schema.columns) == list(frame.columns)
    validate_frame(pd.read_csv(root / "data" / "tiny.csv"), schema, "tiny.csv")


def test_init_refuses_a_target_that_cannot_be_trained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    code = main([*init_args(root)[:3], "species", *init_args(root)[4:]])
    assert code == 2
    assert "Target column 'species' is not in the data." in capsys.readouterr().err
    assert not (root / "configs").exists()


def test_init_then_validate_then_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    root = project(tmp_path)
    assert main(init_args(root)) == 0
    config = root / "configs" / "tiny.yaml"
    assert main(["validate", str(config)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"Data '{root / 'data' / 'tiny.csv'}' is valid against schema 'TinySchema'" in out
    fast = ["--set", "models=[logistic_regression]", "--set", "split.cv_folds=2"]
    assert main(["train", str(config), *fast]) == 0
    (run,) = [p for p in (root / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["config"]["schema"] == str(root / "schemas" / "tiny.yaml")


def test_validate_lists_every_failure_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    write_starter_files(root / "data" / "tiny.csv", "label", root / "configs", root / "schemas")
    bad = make_frame(80).assign(colour="purple").drop(columns=["x2"])
    bad.loc[3, "x1"] = 1e6
    bad.to_csv(root / "data" / "new.csv", index=False)
    code = main(
        ["validate", str(root / "configs" / "tiny.yaml"), "--data", str(root / "data" / "new.csv")]
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "Validation failures (first 20 of 82)" in err
    assert "missing column(s) 'x2'; 81 failing value(s) or check(s) in column(s) " in err
    assert "'colour', 'x1'" in err or "'x1', 'colour'" in err


def test_validate_a_file_against_a_schema_file_without_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    files = write_starter_files(
        root / "data" / "tiny.csv", "label", root / "configs", root / "schemas"
    )
    data = str(root / "data" / "tiny.csv")
    assert main(["validate", "--data", data, "--schema", str(files.schema)]) == 0
    make_frame(80).assign(label="maybe").to_csv(root / "data" / "odd.csv", index=False)
    odd = str(root / "data" / "odd.csv")
    assert main(["validate", "--data", odd, "--schema", str(files.schema)]) == 2
    assert "80 failing value(s) or check(s) in column(s) 'label'" in " ".join(
        capsys.readouterr().err.split()
    )


def test_validate_checks_what_training_needs_of_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.csv"
    make_frame(40).assign(label="no").to_csv(data, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {data}\ntarget: label\n")
    assert main(["validate", str(config)]) == 2
    assert "has a single class ('no'); need two." in capsys.readouterr().err


@pytest.mark.e2e
def test_init_and_validate_through_the_real_command_line(
    tmp_path: Path, run_cli: Callable[..., CompletedProcess[str]]
) -> None:
    root = project(tmp_path)
    init = run_cli(*init_args(root))
    assert init.returncode == 0, init.stderr
    ok = run_cli("validate", str(root / "configs" / "tiny.yaml"))
    assert ok.returncode == 0, ok.stderr
    make_frame(80).assign(x1=1e6).to_csv(root / "data" / "far.csv", index=False)
    far = run_cli(
        "validate", str(root / "configs" / "tiny.yaml"), "--data", str(root / "data/far.csv")
    )
    assert far.returncode == 2
    assert "80 failing value(s) or check(s) in column(s) 'x1'" in " ".join(far.stderr.split())
    assert "Traceback" not in far.stderr


def test_validation_coerces_its_own_frame_and_leaves_the_loaded_table_as_it_was() -> None:
    """validate_frame coerces a shallow copy in place (copy-on-write): the loaded table, which
    the drift reference is drawn from later, keeps its own values and types."""
    loaded = pd.DataFrame({"n": [1, 2, 3], "x": [0.5, 1.5, 2.5], "s": ["a", "b", "a"]})
    before = loaded.copy(deep=True)
    schema = pa.DataFrameSchema(
        {"n": pa.Column(float, coerce=True), "x": pa.Column(float), "s": pa.Column(str)}
    )
    validated = validate_frame(loaded, schema, "t.csv")
    assert validated["n"].dtype == float
    validated.loc[0, "x"] = 99.0
    pd.testing.assert_frame_equal(loaded, before)
