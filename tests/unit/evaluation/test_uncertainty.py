"""Bootstrap intervals: exact curve statistics, seeded, and consistent with the point metrics."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from tasks.evaluation.metrics import binary_metrics
from tasks.evaluation.uncertainty import (
    bootstrap_intervals,
    count_metrics,
    score_cells,
    weighted_average_precision,
    weighted_roc_auc,
)


def test_curve_statistics_on_score_cells_equal_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    is_positive = rng.random(400) < 0.2
    score = np.round(rng.random(400) + 0.4 * is_positive, 1)  # many ties
    positive, negative = score_cells(is_positive, score)
    auc = weighted_roc_auc(positive[None, :], negative[None, :])
    ap = weighted_average_precision(positive[None, :], negative[None, :])
    assert auc[0] == pytest.approx(roc_auc_score(is_positive, score))
    assert ap[0] == pytest.approx(average_precision_score(is_positive, score))


def test_count_metrics_equal_the_course_definitions() -> None:
    # labels ordered [negative, positive]: rows true, columns predicted
    cells = np.array([[[50, 10], [5, 35]]])
    replicate = count_metrics(cells)
    expected = binary_metrics(tn=50, fp=10, fn=5, tp=35)
    for name in ("accuracy", "precision", "recall", "specificity", "npv", "f1"):
        assert replicate[name][0] == pytest.approx(expected[name])


def sample_predictions(n: int, seed: int) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y_true = pd.Series(np.where(rng.random(n) < 0.3, "yes", "no"))
    p_yes = np.clip(rng.random(n) * 0.6 + 0.35 * (y_true == "yes"), 0, 1)
    y_pred = pd.Series(np.where(p_yes >= 0.5, "yes", "no"))
    return y_true, y_pred, pd.DataFrame({"no": 1 - p_yes, "yes": p_yes})


def test_intervals_are_seeded_and_contain_the_estimate() -> None:
    y_true, y_pred, probabilities = sample_predictions(2000, 1)
    point = {
        "accuracy": float((y_true == y_pred).mean()),
        "roc_auc": roc_auc_score(y_true == "yes", probabilities["yes"]),
    }
    first = bootstrap_intervals(y_true, y_pred, probabilities, ["no", "yes"], "yes", 5, point)
    again = bootstrap_intervals(y_true, y_pred, probabilities, ["no", "yes"], "yes", 5, point)
    assert first == again
    for name in point:
        interval = first["metrics"][name]
        assert interval["low"] < interval["estimate"] < interval["high"]
        assert interval["high"] - interval["low"] < 0.1


def test_intervals_run_at_a_million_rows() -> None:
    y_true, y_pred, probabilities = sample_predictions(1_000_000, 2)
    result = bootstrap_intervals(
        y_true,
        y_pred,
        probabilities,
        ["no", "yes"],
        "yes",
        0,
        {"recall": 0.5, "average_precision": 0.5},
    )
    assert result["metrics"]["average_precision"]["low"] is not None
