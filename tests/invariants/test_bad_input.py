"""Every bad input a user can bring gets one clear sentence through the real command line,
exit code 2 and no traceback; what tabpipe can repair (encoding, delimiter, empty target
rows, unusable columns, too few rows for the folds) it repairs and says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pandas as pd
import pytest

from flows.cli.main import main
from tests.conftest import PROJECT_ROOT, make_frame

FAST_TRAIN = ["--set", "models=[logistic_regression]", "--set", "split.cv_folds=2"]


def train_cli(
    capsys: pytest.CaptureFixture[str], data: Path, runs_dir: Path, *extra: str
) -> tuple[int, str, str]:
    """`tabpipe train --data FILE --target label` in this process; returns code, out, err."""
    args = ["train", "--data", str(data), "--target", "label", "--set", f"runs_dir={runs_dir}"]
    code = main([*args, *FAST_TRAIN, *extra])
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), " ".join(captured.err.split())


def only_run(runs_dir: Path) -> Path:
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run


def write_bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def write_frame(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    return lambda path: change(make_frame(80)).to_csv(path, index=False)


def with_labels(labels: list[str | None]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.assign(label=labels)


# What the file's first bytes give away is answered before a run (or a server) starts.
REFUSED_BEFORE_START = {
    "empty file": (write_bytes(b""), "is empty."),
    "binary file": (
        write_bytes(bytes(range(256)) * 8),
        "is not a text table (it contains binary data); tabpipe reads CSV",
    ),
    "duplicate column names": (
        write_bytes(b"x1,x1,label\n1,2,yes\n3,4,no\n"),
        "has the column 'x1' more than once.",
    ),
    "target column missing": (
        write_frame(lambda f: f.rename(columns={"label": "outcome"})),
        "Target column 'label' is not in",
    ),
}

REFUSED_FILES = {
    "header only": (write_bytes(b"x1,x2,colour,label\n"), "has a header but no rows."),
    "garbage text": (
        write_bytes(b"label,x\nyes,1\nno,2,3,4,5\n"),
        "is not a readable table",
    ),
    "target all empty": (
        write_frame(lambda f: f.assign(label=np.nan)),
        "Target column 'label' is empty in every row.",
    ),
    "single class": (
        write_frame(lambda f: f.assign(label="no")),
        "Target column 'label' has a single class ('no'); need two.",
    ),
    "class with fewer rows than a split needs": (
        write_frame(with_labels(["yes", "yes"] + ["no"] * 78)),
        "Class 'yes' of target 'label' has only 2 row(s); at least 3 are needed",
    ),
    "infinite values": (
        write_frame(lambda f: f.assign(x1=f["x1"].where(f.index != 3, np.inf))),
        "failed validation: 1 infinite value(s) in column(s) 'x1'.",
    ),
    "more columns than rows": (
        lambda path: (
            pd.DataFrame(
                np.random.default_rng(0).normal(size=(12, 30)), columns=[f"c{i}" for i in range(30)]
            )
            .assign(label=["a", "b"] * 6)
            .to_csv(path, index=False)
        ),
        "more feature columns (30) than rows with a 'label' value (12)",
    ),
}


def test_missing_file_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = train_cli(capsys, tmp_path / "nowhere.csv", tmp_path / "runs")
    assert code == 2
    assert f"error: Data file '{tmp_path / 'nowhere.csv'}' does not exist." in err
    assert not (tmp_path / "runs").exists()  # nothing started: no run directory


@pytest.mark.parametrize("case", list(REFUSED_BEFORE_START))
def test_a_bad_header_is_one_sentence_before_any_run_starts(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write, message = REFUSED_BEFORE_START[case]
    data = tmp_path / "data.csv"
    write(data)
    code, _, err = train_cli(capsys, data, tmp_path / "runs")
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing started: no run directory


@pytest.mark.parametrize("case", list(REFUSED_FILES))
def test_bad_file_is_refused_with_one_sentence_and_a_failed_run(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    write, message = REFUSED_FILES[case]
    data = tmp_path / "data.csv"
    write(data)
    code, _, err = train_cli(capsys, data, tmp_path / "runs")
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    manifest = json.loads((only_run(tmp_path / "runs") / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert message in " ".join(manifest["error"].split())


def test_infinite_values_are_listed_in_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    data = tmp_path / "data.csv"
    make_frame(80).assign(x2=lambda f: f["x2"].where(f.index != 5, -np.inf)).to_csv(data)
    code, _, err = train_cli(capsys, data, tmp_path / "runs")
    assert code == 2
    cases = pd.read_csv(only_run(tmp_path / "runs") / "validation" / "failure_cases.csv")
    assert cases[["column", "check", "index"]].values.tolist() == [["x2", "finite", 5]]
    assert "-inf" in err  # the terminal table shows the value


def test_semicolons_and_latin1_are_read_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    data = tmp_path / "data.csv"
    frame = make_frame(80).replace({"colour": {"red": "rouge été"}})
    frame.to_csv(data, sep=";", index=False, encoding="latin-1")
    code, out, _ = train_cli(capsys, data, tmp_path / "runs")
    assert code == 0
    assert "note: 'data.csv' is not UTF-8; read it as cp1252." in out
    assert "note: 'data.csv' uses ';' as delimiter; read it so." in out
    profile = json.loads((only_run(tmp_path / "runs") / "profile.json").read_text())
    assert profile["categorical_columns"] == ["colour"]
    assert profile["n_columns"] == 4


def test_a_class_smaller_than_the_folds_gets_fewer_folds_and_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    data = tmp_path / "data.csv"
    make_frame(80).assign(label=["yes"] * 5 + ["no"] * 75).to_csv(data, index=False)
    code, out, _ = train_cli(capsys, data, tmp_path / "runs", "--set", "split.cv_folds=5")
    assert code == 0
    assert "note: class 'yes' has 4 training rows, fewer than the 5 folds asked for" in out
    metrics = json.loads((only_run(tmp_path / "runs") / "metrics.json").read_text())
    assert metrics["cv_folds"] == 4


def test_rows_with_empty_target_are_dropped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    data = tmp_path / "data.csv"
    frame = make_frame(80)
    frame.loc[frame.index[:7], "label"] = np.nan
    frame.to_csv(data, index=False)
    code, out, _ = train_cli(capsys, data, tmp_path / "runs")
    assert code == 0
    assert "note: 7 row(s) with an empty 'label' are left out of training." in out
    run = only_run(tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert metrics["dropped_target_rows"] == manifest["data"]["dropped_target_rows"] == 7
    assert metrics["n_train"] + metrics["n_test"] == 73


UNUSABLE_COLUMNS = {
    "entirely empty": (lambda n: [np.nan] * n, "every value is empty"),
    "constant": (lambda n: [7] * n, "it holds one constant value"),
    "identifier-like": (
        lambda n: list(range(1000, 1000 + n)),
        "it is unique per row, like an identifier",
    ),
}


@pytest.mark.parametrize("kind", list(UNUSABLE_COLUMNS))
def test_unusable_column_is_left_out_and_reported(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    values, reason = UNUSABLE_COLUMNS[kind]
    data = tmp_path / "data.csv"
    make_frame(80).assign(useless=values(80)).to_csv(data, index=False)
    code, out, _ = train_cli(capsys, data, tmp_path / "runs")
    assert code == 0
    assert f"note: Column 'useless' is left out of the model: {reason}" in out
    run = only_run(tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    assert reason in metrics["dropped_columns"]["useless"]
    card = json.loads((run / "models" / "best.json").read_text())
    assert "useless" not in json.dumps(card.get("input_columns", card))


def tiny_penguins(tmp_path: Path) -> Path:
    frame = pd.read_csv(PROJECT_ROOT / "data" / "penguins.csv").groupby("species").head(15)
    frame = frame.reset_index(drop=True).drop(columns=["year"])
    frame.loc[0, "bill_length_mm"] = 500.0
    frame.loc[1, "island"] = "Atlantis"
    path = tmp_path / "penguins_bad.csv"
    frame.to_csv(path, index=False)
    return path


def test_values_outside_the_schema_are_all_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    data = tiny_penguins(tmp_path)
    overrides = ["--set", f"data={data}", "--set", f"runs_dir={tmp_path / 'runs'}"]
    code = main(["train", str(PROJECT_ROOT / "configs" / "penguins.yaml"), *overrides])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert (
        f"error: Data '{data}' failed validation: missing column(s) 'year'; 2 failing value(s) "
        "or check(s) in column(s) 'island', 'bill_length_mm'." in err
    )
    run = only_run(tmp_path / "runs")
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    cases = pd.read_csv(run / "validation" / "failure_cases.csv")
    assert sorted(cases["column"]) == ["bill_length_mm", "island", "year"]
    assert set(cases["failure_case"]) == {"year", "Atlantis", "500.0"}
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["validation-failures"]))
        )
    assert any(str(data) in (a.description or "") for a in artifacts)


CONFIG_MISTAKES = {
    "unknown key": (
        "split:\n  cv_fold: 3\n",
        "unknown key 'split.cv_fold'.",
    ),
    "wrong type": (
        "split:\n  cv_folds: five\n",
        "key 'split.cv_folds' input should be a valid integer",
    ),
    "unknown model family": (
        "models: [logistic_regression, random_forrest]\n",
        "key 'models.1' names an unknown model family 'random_forrest'",
    ),
    "grid parameter the estimator lacks": (
        "grids:\n  random_forest:\n    max_dept: [3, 5]\n",
        "key 'grids.random_forest.max_dept' is not a parameter of RandomForestClassifier.",
    ),
    "grid for an unknown family": (
        "grids:\n  xgboost:\n    max_depth: [3]\n",
        "key 'grids.xgboost' names an unknown model family",
    ),
    "schema that does not import": (
        "schema: schemas.nowhere:Nothing\n",
        "key 'schema': Schema 'schemas.nowhere:Nothing' names no module file inside the project",
    ),
}


def write_config(tmp_path: Path, body: str) -> Path:
    data = tmp_path / "data.csv"
    make_frame(40).to_csv(data, index=False)
    config = tmp_path / "configs" / "bad.yaml"
    config.parent.mkdir()
    config.write_text(f"data: {data}\ntarget: label\n{body}", encoding="utf-8")
    return config


@pytest.mark.parametrize("mistake", list(CONFIG_MISTAKES))
def test_config_mistake_names_the_key_before_prefect_starts(
    mistake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, message = CONFIG_MISTAKES[mistake]
    config = write_config(tmp_path, body)
    code = main(["train", str(config), "--set", f"runs_dir={tmp_path / 'runs'}"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"error: {config}: {message}" in err
    assert not (tmp_path / "runs").exists()  # refused before any run or flow started


@pytest.mark.e2e
def test_real_command_line_says_one_sentence_without_traceback(
    tmp_path: Path, run_cli: Callable[..., CompletedProcess[str]]
) -> None:
    config = write_config(tmp_path, CONFIG_MISTAKES["grid parameter the estimator lacks"][0])
    bad_config = run_cli("train", str(config))
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    bad_file = run_cli(
        "train", "--data", str(binary), "--target", "label", "--set", f"runs_dir={tmp_path}/runs"
    )
    for result, message in [
        (bad_config, "grids.random_forest.max_dept"),
        (bad_file, "is not a text table (it contains binary data); tabpipe reads CSV"),
    ]:
        assert result.returncode == 2, result.stderr
        assert message in " ".join(result.stderr.split())
        assert "Traceback" not in result.stderr
    debug = run_cli("--debug", "train", str(config))
    assert "Traceback" in debug.stderr


def test_missing_columns_are_named_even_when_pandera_gives_no_column() -> None:
    from tasks.data.validate import name_column_checks, summarise_failures

    cases = pd.DataFrame(
        {
            "column": [None, "Schema", "x1"],
            "check": ["column_in_dataframe", "column_in_schema", "in_range(0, 1)"],
            "failure_case": ["year", "extra", 7.0],
            "index": [None, None, 4],
        }
    )
    named = name_column_checks(cases)
    assert named["column"].tolist() == ["year", "extra", "x1"]
    assert summarise_failures(named, "new.csv") == (
        "Data 'new.csv' failed validation: missing column(s) 'year'; column(s) 'extra' not in "
        "the schema; 1 failing value(s) or check(s) in column(s) 'x1'."
    )
