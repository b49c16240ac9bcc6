"""Batch prediction: `tabpipe predict` (the batch-predict flow) on new rows, good and bad."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli.main import main
from flows.predict import PredictParameters, predict_deployment
from tasks.errors import StorageError
from tasks.run.model_io import load_checked_model
from tasks.serving.answers import predict_with_card
from tasks.serving.predict import write_predictions_file
from tests.conftest import make_frame
from tests.filesystems import read_only_disk, small_disk
from tests.trained_run import DATASET, TrainedRun


def new_rows(tmp_path: Path, with_target: bool = False) -> tuple[Path, pd.DataFrame]:
    frame = make_frame(n_rows=30, seed=11)
    frame = frame if with_target else frame.drop(columns="label")
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    return path, frame


def predict_cli(run: TrainedRun, model: str, data: Path, out: Path, *extra: str) -> int:
    return main(
        ["predict", "--model", model, "--data", str(data), "--out", str(out),
         "--runs-dir", str(run.runs_dir), *extra]
    )  # fmt: skip


def test_predict_writes_one_probability_per_class_and_the_balance(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, frame = new_rows(tmp_path)
    out = tmp_path / "scored" / "predictions.csv"
    assert predict_cli(trained_run, f"champion:{DATASET}", data, out) == 0
    predictions = pd.read_csv(out, dtype={"y_pred": str})
    assert list(predictions.columns) == ["row", "y_pred", "proba_no", "proba_yes"]
    assert predictions["row"].tolist() == list(range(len(frame)))
    np.testing.assert_allclose(predictions[["proba_no", "proba_yes"]].sum(axis=1), 1.0)
    expected = np.where(predictions["proba_yes"] > predictions["proba_no"], "yes", "no")
    assert predictions["y_pred"].tolist() == expected.tolist()
    printed = capsys.readouterr().out
    counts = predictions["y_pred"].value_counts()
    assert "Predicted classes" in printed and "30 rows scored" in printed
    for label in ("no", "yes"):
        assert re.search(rf"│ {label}\s+│ {counts.get(label, 0)}\s+│", printed)


def test_predict_keeps_the_target_when_new_rows_have_it(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    data, frame = new_rows(tmp_path, with_target=True)
    out = tmp_path / "with_target.parquet"
    assert predict_cli(trained_run, str(trained_run.run_dir), data, out) == 0
    predictions = pd.read_parquet(out)
    assert predictions["y_true"].tolist() == frame["label"].tolist()


def test_a_missing_column_is_refused_naming_it(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, frame = new_rows(tmp_path)
    frame.drop(columns="x2").to_csv(data, index=False)
    out = tmp_path / "out.csv"
    assert predict_cli(trained_run, f"champion:{DATASET}", data, out) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "does not match the training schema" in error and "missing column(s) 'x2'" in error
    assert not out.exists()


def test_a_wrong_type_is_refused_naming_the_column(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, frame = new_rows(tmp_path)
    frame.astype({"x1": object}).assign(x1=lambda f: f["x1"].where(f.index != 3, "tall")).to_csv(
        data, index=False
    )
    out = tmp_path / "out.csv"
    assert predict_cli(trained_run, f"champion:{DATASET}", data, out) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "failing value(s) in column(s) 'x1'" in error
    assert "tall" in error  # the failure-case table shows the bad value
    assert not out.exists()


def test_refusals_are_one_sentence_and_exit_2(
    run_copy: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = new_rows(tmp_path)
    out = tmp_path / "out.csv"
    assert predict_cli(run_copy, "champion:nobody", data, out) == 2
    assert "No champion for 'nobody'" in capsys.readouterr().err
    outside = tmp_path / "outside"
    shutil.copytree(run_copy.run_dir, outside)
    assert predict_cli(run_copy, str(outside), data, out) == 2
    assert "--trust" in capsys.readouterr().err
    assert predict_cli(run_copy, str(outside), data, out, "--trust") == 0
    model_bytes = bytearray(run_copy.model_path.read_bytes())
    model_bytes[100] ^= 0x01
    run_copy.model_path.write_bytes(bytes(model_bytes))
    assert predict_cli(run_copy, str(run_copy.run_dir), data, tmp_path / "no.csv") == 2
    assert "does not match the sha256" in capsys.readouterr().err
    assert not (tmp_path / "no.csv").exists()


def test_a_decision_threshold_in_the_card_decides_binary_labels(
    trained_run: TrainedRun,
) -> None:
    model, card = load_checked_model(trained_run.model_path, trained_run.runs_dir)
    rows = make_frame(n_rows=40, seed=5).drop(columns="label").astype({"colour": "category"})
    argmax = predict_with_card(model, card, rows)
    strict = predict_with_card(model, {**card, "decision_threshold": 0.9}, rows)
    np.testing.assert_allclose(strict["yes"], argmax["yes"])
    assert strict["y_pred"].tolist() == np.where(argmax["yes"] >= 0.9, "yes", "no").tolist()
    assert (strict["y_pred"] == "yes").sum() < (argmax["y_pred"] == "yes").sum()


def test_batch_predict_deploys_on_a_schedule(tmp_path: Path) -> None:
    params = PredictParameters(model="champion:tiny", data="data/new.csv", out="out/new.csv")
    deployment = predict_deployment(params, cron="0 4 * * *")
    assert deployment.name == "batch-predict-new"
    assert deployment.parameters == {"params": params.model_dump()}
    assert deployment.schedules[0].schedule.cron == "0 4 * * *"


def one_sentence_error(capsys: pytest.CaptureFixture[str]) -> str:
    error = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert error.startswith("error:") and "Traceback" not in error
    return error


def test_out_never_overwrites_the_data_file(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = new_rows(tmp_path)
    before = data.read_bytes()
    other_spelling = tmp_path / "sub" / ".." / data.name
    (tmp_path / "sub").mkdir()
    linked = tmp_path / "linked.csv"
    linked.symlink_to(data)
    for out in (data, other_spelling, linked):
        assert predict_cli(trained_run, f"champion:{DATASET}", data, out) == 2
        assert "is the data file being scored" in one_sentence_error(capsys)
    assert data.read_bytes() == before


def test_out_never_writes_into_a_run_or_the_registry(
    run_copy: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = new_rows(tmp_path)
    metrics = run_copy.run_dir / "metrics.json"
    before = metrics.read_bytes()
    for out in (metrics, run_copy.run_dir / "new.csv", run_copy.runs_dir / "registry.json"):
        assert predict_cli(run_copy, str(run_copy.run_dir), data, out) == 2
        assert "which belongs to the runs" in one_sentence_error(capsys)
    assert metrics.read_bytes() == before
    assert not (run_copy.run_dir / "new.csv").exists()
    assert predict_cli(run_copy, str(run_copy.run_dir), data, run_copy.runs_dir / "ok.csv") == 0


def test_a_directory_or_read_only_out_is_one_sentence(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = new_rows(tmp_path)
    assert predict_cli(trained_run, f"champion:{DATASET}", data, tmp_path) == 2
    assert f"--out '{tmp_path}' is a directory" in one_sentence_error(capsys)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    assert predict_cli(trained_run, f"champion:{DATASET}", data, a_file / "out.csv") == 2
    assert "is a file, not a folder" in one_sentence_error(capsys)
    with read_only_disk(tmp_path / "ro") as read_only:
        assert predict_cli(trained_run, f"champion:{DATASET}", data, read_only / "o.csv") == 2
        assert "is on a read-only file system" in one_sentence_error(capsys)


def test_a_full_disk_keeps_the_previous_output_whole(tmp_path: Path) -> None:
    """Written to a hidden sibling and renamed: a failed write leaves the old file intact."""
    with small_disk(tmp_path / "disk", "128k") as disk:
        out = disk / "scored.csv"
        out.write_text("row,y_pred\n0,yes\n")
        big = pd.DataFrame({"row": range(20_000), "y_pred": "yes", "proba_yes": 0.123456789})
        with pytest.raises(StorageError, match=f"No space left on the disk holding '{out}'"):
            write_predictions_file(big, out)
        assert out.read_text() == "row,y_pred\n0,yes\n"
        assert sorted(p.name for p in disk.iterdir()) == ["scored.csv"]
