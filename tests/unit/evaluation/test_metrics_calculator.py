"""`tabpipe metrics` and the metric code it shares with the training flow, against hand counts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from flows.cli.main import main
from flows.cli.metrics import read_confusion_matrix
from tasks.errors import DataError
from tasks.evaluation.metrics import binary_metrics, multiclass_metrics, undefined_reason


def test_course_example_by_hand() -> None:
    """The course's exercise: TN=50, FP=10, FN=5, TP=35 (100 rows)."""
    report = binary_metrics(tn=50, fp=10, fn=5, tp=35)
    precision, recall = 35 / 45, 35 / 40
    assert report["accuracy"] == pytest.approx(0.85)
    assert report["precision"] == pytest.approx(precision)
    assert report["recall"] == pytest.approx(recall)
    assert report["specificity"] == pytest.approx(50 / 60)
    assert report["npv"] == pytest.approx(50 / 55)
    assert report["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert report["f1"] == pytest.approx(70 / 85)  # 2TP / (2TP + FP + FN)
    assert report["balanced_accuracy"] == pytest.approx((35 / 40 + 50 / 60) / 2)
    assert report["fpr"] == pytest.approx(10 / 60)
    assert report["fnr"] == pytest.approx(5 / 40)
    assert report["prevalence"] == pytest.approx(0.40)
    assert report["mcc"] == pytest.approx((35 * 50 - 10 * 5) / math.sqrt(45 * 40 * 60 * 55))
    assert report["notes"] == []


def test_binary_agrees_with_sklearn() -> None:
    from sklearn.metrics import confusion_matrix, matthews_corrcoef

    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, 1 - y_true)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred).ravel()
    assert binary_metrics(tn, fp, fn, tp)["mcc"] == pytest.approx(matthews_corrcoef(y_true, y_pred))


def test_nothing_predicted_positive_is_undefined_not_zero() -> None:
    report = binary_metrics(tn=50, fp=0, fn=5, tp=0)
    assert report["precision"] is None
    assert report["f1"] is None
    assert report["mcc"] is None
    assert report["recall"] == 0.0
    assert report["npv"] == pytest.approx(50 / 55)
    assert "nothing predicted positive" in (undefined_reason("precision", report["notes"]) or "")
    assert undefined_reason("recall", report["notes"]) is None


def test_no_actual_negatives() -> None:
    report = binary_metrics(tn=0, fp=0, fn=3, tp=7)
    assert report["specificity"] is None
    assert report["fpr"] is None
    assert report["balanced_accuracy"] is None
    assert "no row is actually negative" in (undefined_reason("specificity", report["notes"]) or "")
    assert report["recall"] == pytest.approx(0.7)


def test_empty_matrix_everything_undefined() -> None:
    report = binary_metrics(0, 0, 0, 0)
    assert all(report[name] is None for name in ("accuracy", "precision", "recall", "f1", "mcc"))
    assert undefined_reason("accuracy", report["notes"]) == "the matrix is empty"


# rows: true labels, columns: predicted labels
THREE_CLASS = np.array([[5, 2, 0], [3, 3, 2], [0, 1, 11]])


def test_multiclass_by_hand() -> None:
    report = multiclass_metrics(THREE_CLASS, ["cat", "dog", "fox"])
    cat = report["per_class"]["cat"]
    # cat: TP 5, FP 3 (dog predicted cat), FN 2, TN 27 - 5 - 3 - 2 = 17
    assert cat["counts"] == {"tp": 5, "fp": 3, "fn": 2, "tn": 17}
    assert cat["precision"] == pytest.approx(5 / 8)
    assert cat["recall"] == pytest.approx(5 / 7)
    assert report["per_class"]["dog"]["precision"] == pytest.approx(3 / 6)
    assert report["per_class"]["fox"]["recall"] == pytest.approx(11 / 12)
    assert report["support"] == {"cat": 7, "dog": 8, "fox": 12}
    assert report["accuracy"] == pytest.approx(19 / 27)
    # micro: pooled TP 19, pooled FP = pooled FN = 8 (every error is one of each)
    assert report["micro"]["precision"] == pytest.approx(19 / 27)
    assert report["micro"]["recall"] == pytest.approx(19 / 27)
    assert report["macro"]["precision"] == pytest.approx((5 / 8 + 3 / 6 + 11 / 13) / 3)
    assert report["macro"]["recall"] == pytest.approx((5 / 7 + 3 / 8 + 11 / 12) / 3)


def test_multiclass_never_predicted_class_makes_macro_precision_undefined() -> None:
    matrix = np.array([[4, 0, 1], [2, 0, 1], [0, 0, 5]])
    report = multiclass_metrics(matrix, ["a", "b", "c"])
    assert report["per_class"]["b"]["precision"] is None
    assert report["macro"]["precision"] is None
    assert "class 'b'" in (undefined_reason("macro precision", report["notes"]) or "")
    assert report["macro"]["recall"] == pytest.approx((4 / 5 + 0 + 1) / 3)
    assert report["micro"]["precision"] == pytest.approx(9 / 13)


def write_matrix(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_matrix_csv_columns_are_reordered_to_the_rows(tmp_path: Path) -> None:
    path = write_matrix(tmp_path / "m.csv", "true,fox,cat,dog\ncat,0,5,2\ndog,2,3,3\nfox,11,0,1\n")
    matrix, labels = read_confusion_matrix(path)
    assert labels == ["cat", "dog", "fox"]
    assert matrix.tolist() == THREE_CLASS.tolist()


@pytest.mark.parametrize(
    "text",
    [
        "true,a,b\na,1,2\nc,3,4\n",  # labels differ
        "true,a,b\na,1,-2\nb,3,4\n",  # negative
        "true,a,b\na,1,2.5\nb,3,4\n",  # not whole
        "true,a,b\na,1,x\nb,3,4\n",  # not a number
    ],
)
def test_bad_matrix_files_are_data_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError, match=r"m\.csv"):
        read_confusion_matrix(write_matrix(tmp_path / "m.csv", text))


def test_cli_table_shows_values_and_na_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--tn", "50", "--fp", "0", "--fn", "5", "--tp", "0"]) == 0
    out = capsys.readouterr().out
    assert "0.9091" in out  # accuracy and npv 50/55
    precision_line = next(line for line in out.splitlines() if "│ precision" in line)
    assert "n/a" in precision_line
    assert "TP+FP = 0" in precision_line


def test_cli_json_matches_the_shared_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--tn", "50", "--fp", "10", "--fn", "5", "--tp", "35", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(binary_metrics(50, 10, 5, 35)))
    assert printed["accuracy"] == pytest.approx(0.85)


def test_cli_matrix_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_matrix(tmp_path / "m.csv", ",cat,dog,fox\ncat,5,2,0\ndog,3,3,2\nfox,0,1,11\n")
    assert main(["metrics", "--matrix", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["labels"] == ["cat", "dog", "fox"]
    assert printed["macro"]["precision"] == pytest.approx((5 / 8 + 3 / 6 + 11 / 13) / 3)


def test_cli_missing_counts_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--tn", "50", "--fp", "10"]) == 2
    assert "--fn, --tp" in capsys.readouterr().err


def test_matrix_from_a_run_reproduces_its_test_metrics(tmp_path: Path) -> None:
    """The calculator and the training flow share one implementation: same matrix, same numbers."""
    import pandas as pd

    from tasks.evaluation.metrics import classification_metrics
    from tasks.run.rundir import write_json

    y_true = pd.Series(["a", "a", "b", "b", "c", "c", "c", "a"])
    y_pred = pd.Series(["a", "b", "b", "b", "c", "a", "c", "a"])
    probabilities = pd.get_dummies(y_pred).astype(float)
    test_metrics = classification_metrics(y_true, y_pred, probabilities, ["a", "b", "c"], None)
    path = write_json(tmp_path / "metrics.json", {"test_metrics": test_metrics})

    matrix, labels = read_confusion_matrix(path)
    recomputed = multiclass_metrics(matrix, labels)
    assert labels == ["a", "b", "c"]
    assert recomputed["macro"] == test_metrics["macro"]
    assert recomputed["micro"] == test_metrics["micro"]
    assert recomputed["per_class"] == test_metrics["per_class"]


def test_json_that_is_not_a_run_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(DataError, match=r"other\.json"):
        read_confusion_matrix(path)
