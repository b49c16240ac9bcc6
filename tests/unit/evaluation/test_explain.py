"""The stacked permutation importance gives scikit-learn's permutation_importance numbers exactly
(same shuffles, same scorer), whatever the batching, for each kind of task and model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.evaluation import explain
from tasks.evaluation.explain import importance_from_parts, importance_part, importance_table
from tasks.model_selection.pipeline import FAMILIES, REGRESSION_FAMILIES, build_pipeline
from tasks.model_selection.search import build_scorer
from tests.conftest import make_frame


def sklearn_table(model: object, X: pd.DataFrame, y: pd.Series, scoring: object) -> pd.DataFrame:
    result = permutation_importance(
        model, X, y, scoring=scoring, n_repeats=explain.IMPORTANCE_REPEATS, random_state=7
    )
    return pd.DataFrame(
        {
            "column": X.columns,
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )


def assert_same_importances(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    merged = theirs.merge(ours, on="column", suffixes=("_theirs", "_ours"), validate="1:1")
    assert len(merged) == len(theirs) == len(ours)
    for stat in ("importance_mean", "importance_std"):
        np.testing.assert_allclose(merged[f"{stat}_ours"], merged[f"{stat}_theirs"], atol=1e-12)
    assert (merged["importance_mean_theirs"].abs() > 0).any()  # the data has signal to find


def fitted(family: str, frame: pd.DataFrame, target: str) -> tuple[object, pd.DataFrame]:
    profile = profile_frame(frame, target)
    families = REGRESSION_FAMILIES if profile.task == "regression" else FAMILIES
    pipeline = build_pipeline(
        families[family], profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
    )
    X = frame.drop(columns=[target])
    return pipeline.fit(X, frame[target]), X


@pytest.mark.parametrize("rows_per_prediction", [1, 500, 20_000])
def test_binary_pr_auc_with_a_string_positive_label(
    rows_per_prediction: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(explain, "ROWS_PER_PREDICTION", rows_per_prediction)
    frame = make_frame(160, positive_share=0.3, seed=3)
    model, X = fitted("random_forest", frame, "label")
    scorer = build_scorer("average_precision", "yes")
    ours = importance_table(model, X, frame["label"], scorer, seed=7)
    assert_same_importances(ours, sklearn_table(model, X, frame["label"], scorer))


def test_a_model_scored_by_its_decision_function() -> None:
    frame = make_frame(160, positive_share=0.3, seed=4)
    model, X = fitted("logistic_regression", frame, "label")
    assert isinstance(model[-1], LogisticRegression)  # PR-AUC then reads decision_function
    scorer = build_scorer("average_precision", "yes")
    ours = importance_table(model, X, frame["label"], scorer, seed=7)
    assert_same_importances(ours, sklearn_table(model, X, frame["label"], scorer))


def test_multiclass_macro_f1_named_by_a_string() -> None:
    rng = np.random.default_rng(5)
    signal = rng.normal(size=240)
    frame = pd.DataFrame(
        {
            "class": rng.normal(size=240),  # a name scikit-learn uses too: data, not a keyword
            "x 2": signal + rng.normal(scale=0.3, size=240),
            "shade": rng.choice(["a", "b"], size=240),
            "y": np.select([signal < -0.5, signal < 0.5], ["low", "mid"], "high"),
        }
    )
    model, X = fitted("logistic_regression", frame, "y")
    ours = importance_table(model, X, frame["y"], "f1_macro", seed=7)
    assert_same_importances(ours, sklearn_table(model, X, frame["y"], "f1_macro"))


def test_regression_rmse_on_rows_over_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explain, "MAX_IMPORTANCE_ROWS", 100)
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["target"] = 3 * frame["a"] + rng.normal(scale=0.1, size=300)
    model, X = fitted("ridge", frame, "target")
    assert isinstance(model[-1], Ridge)
    scoring = "neg_root_mean_squared_error"
    ours = importance_table(model, X, frame["target"], scoring, seed=7)
    sampled = X.sample(100, random_state=7)  # the same rows the cap keeps
    theirs = sklearn_table(model, sampled, frame["target"].loc[sampled.index], scoring)
    assert_same_importances(ours, theirs)
    assert ours.iloc[0]["column"] == "a"


def test_the_batches_cover_every_column_once_and_give_each_worker_one() -> None:
    batches = explain.column_batches(85, rows_per_copy=3 * 1165, n_jobs=2)
    assert [c for batch in batches for c in batch] == list(range(85))
    assert len(batches) >= 2
    assert max(len(b) for b in batches) * 3 * 1165 <= explain.ROWS_PER_PREDICTION
    assert explain.column_batches(3, rows_per_copy=10, n_jobs=2) == [[0, 1], [2]]


@pytest.mark.parametrize("parts", [2, 3, 12])
def test_the_parts_of_the_table_make_the_whole_table(parts: int) -> None:
    """A run's CV workers compute the importance in parts, one per worker: together they are
    the table one process makes (more parts than columns leaves some parts empty)."""
    frame = make_frame(160, positive_share=0.3, seed=3)
    model, X = fitted("random_forest", frame, "label")
    scorer = build_scorer("average_precision", "yes")
    whole = importance_table(model, X, frame["label"], scorer, seed=7)
    pieces = [
        importance_part(model, X, frame["label"], scorer, 7, part=part, parts=parts)
        for part in range(parts)
    ]
    assert sorted(p for piece in pieces for p in piece.positions) == list(range(X.shape[1]))
    pd.testing.assert_frame_equal(importance_from_parts(pieces), whole)
