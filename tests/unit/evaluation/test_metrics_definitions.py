"""The course's metric definitions against confusion matrices computed by hand."""

import numpy as np
import pandas as pd
import pytest

from tasks.evaluation.metrics import binary_metrics, classification_metrics, multiclass_metrics


def test_binary_metrics_match_the_course_definitions() -> None:
    result = binary_metrics(tn=50, fp=10, fn=5, tp=35)
    assert result["accuracy"] == pytest.approx(85 / 100)
    assert result["precision"] == pytest.approx(35 / 45)
    assert result["recall"] == pytest.approx(35 / 40)
    assert result["specificity"] == pytest.approx(50 / 60)
    assert result["npv"] == pytest.approx(50 / 55)
    precision, recall = 35 / 45, 35 / 40
    assert result["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert result["notes"] == []


def test_zero_denominator_is_null_with_a_note_never_zero() -> None:
    result = binary_metrics(tn=90, fp=0, fn=10, tp=0)  # nothing predicted positive
    assert result["precision"] is None
    assert result["recall"] == 0.0
    assert result["f1"] is None
    assert any("precision is undefined" in note for note in result["notes"])
    no_negatives = binary_metrics(tn=0, fp=0, fn=0, tp=7)  # no negatives at all
    assert no_negatives["specificity"] is None
    assert no_negatives["npv"] is None


def test_multiclass_per_class_micro_and_macro_by_hand() -> None:
    # rows: true a, b, c; columns: predicted a, b, c
    matrix = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    result = multiclass_metrics(matrix, ["a", "b", "c"])
    a = result["per_class"]["a"]
    assert a["counts"] == {"tp": 5, "fp": 2, "fn": 1, "tn": 8}
    assert a["precision"] == pytest.approx(5 / 7)
    assert a["specificity"] == pytest.approx(8 / 10)
    assert a["npv"] == pytest.approx(8 / 9)
    # micro: pooled tp = 12, fp = 4, fn = 4
    assert result["micro"]["precision"] == pytest.approx(12 / 16)
    assert result["micro"]["recall"] == pytest.approx(12 / 16)
    precisions = [5 / 7, 3 / 4, 4 / 5]
    assert result["macro"]["precision"] == pytest.approx(np.mean(precisions))
    recalls = [5 / 6, 3 / 6, 4 / 4]
    assert result["macro"]["recall"] == pytest.approx(np.mean(recalls))
    assert result["accuracy"] == pytest.approx(12 / 16)
    assert result["support"] == {"a": 6, "b": 6, "c": 4}


def test_classification_metrics_binary_report_uses_positive_label() -> None:
    y_true = pd.Series(["no", "no", "yes", "yes", "no", "yes"])
    y_pred = pd.Series(["no", "yes", "yes", "no", "no", "yes"])
    probabilities = pd.DataFrame(
        {"no": [0.9, 0.4, 0.2, 0.6, 0.8, 0.1], "yes": [0.1, 0.6, 0.8, 0.4, 0.2, 0.9]}
    )
    report = classification_metrics(y_true, y_pred, probabilities, ["no", "yes"], "yes")
    assert report["binary"]["counts"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert report["confusion_matrix"]["matrix"] == [[2, 1], [1, 2]]
    assert report["roc_auc"] == pytest.approx(8 / 9)
    assert report["balanced_accuracy"] == pytest.approx(2 / 3)
