"""Diagnostics on planted tables: each flag fires on its plant, and stays quiet without it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from tasks.config import DiagnosticsConfig, SplitConfig
from tasks.data.profile import profile_frame
from tasks.data.split import DataSplit, make_folds, split_frame
from tasks.evaluation.diagnostics import (
    check_beats_baseline,
    check_duplicates,
    check_overfitting,
    check_small_test_set,
    check_target_proxy,
    check_train_test_shift,
    check_unstable_folds,
    single_feature_scores,
    unused_split_columns,
)
from tasks.evaluation.evaluate import predict_test
from tasks.model_selection.search import FamilyResult
from tests.unit.data.test_split_groups_time import grouped_frame

SETTINGS = DiagnosticsConfig()


def numeric_frame(n_rows: int, signal: float, seed: int) -> pd.DataFrame:
    """Four numeric columns; the label depends on x1 with the given strength (0: pure noise)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n_rows, 4)), columns=["x1", "x2", "x3", "x4"])
    logit = signal * frame["x1"] + rng.logistic(size=n_rows)
    frame["label"] = np.where(logit > 0, "yes", "no")
    return frame


def split_of(frame: pd.DataFrame, seed: int = 0) -> tuple[DataSplit, object]:
    profile = profile_frame(frame, "label")
    return split_frame(frame, profile, 0.3, seed), profile


def test_a_proxy_column_is_flagged_by_name_and_others_are_not() -> None:
    frame = numeric_frame(600, signal=1.0, seed=0)
    rng = np.random.default_rng(1)
    # Recorded after the outcome: the label itself, 2% of it flipped.
    flipped = rng.random(len(frame)) < 0.02
    frame["settled_claim"] = np.where((frame["label"] == "yes") ^ flipped, "Y", "N")
    split, _ = split_of(frame)
    folds, _ = make_folds(split.y_train, 5, seed=0)
    record = check_target_proxy(
        split.X_train,
        split.y_train,
        task="binary",
        folds=folds,
        best_cv_score=0.99,
        settings=SETTINGS,
        seed=0,
    )
    assert record["code"] == "target_proxy" and record["severity"] == "fail"
    assert list(record["evidence"]["proxies"]) == ["settled_claim"]
    assert "'settled_claim'" in record["message"]
    clean = check_target_proxy(
        split.X_train.drop(columns="settled_claim"),
        split.y_train,
        task="binary",
        folds=folds,
        best_cv_score=0.7,
        settings=SETTINGS,
        seed=0,
    )
    assert clean["severity"] == "info"


def test_a_numeric_proxy_of_a_regression_target_is_flagged() -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"x": rng.normal(size=500), "z": rng.normal(size=500)})
    y = pd.Series(3 * X["x"] + rng.normal(size=500), name="y")
    X["y_in_cents"] = y * 100 + rng.normal(size=500)
    from sklearn.model_selection import KFold

    record = check_target_proxy(
        X,
        y,
        task="regression",
        folds=KFold(5, shuffle=True, random_state=0),
        best_cv_score=None,
        settings=SETTINGS,
        seed=0,
    )
    assert list(record["evidence"]["proxies"]) == ["y_in_cents"]


def test_duplicates_across_the_split_are_counted() -> None:
    frame = numeric_frame(200, signal=1.0, seed=3)
    split, _ = split_of(frame)
    planted = split.X_train.iloc[:7].set_axis(range(10_000, 10_007))
    X_test = pd.concat([split.X_test, planted])
    record = check_duplicates(split.X_train, X_test, SETTINGS)
    assert record["evidence"]["test_rows_also_in_train"] == 7
    assert record["evidence"]["share_of_test_rows"] == round(7 / len(X_test), 4)
    assert record["severity"] == "warn"
    assert check_duplicates(split.X_train, split.X_test, SETTINGS)["severity"] == "info"


def test_a_shifted_test_set_is_caught_and_the_shifted_column_named() -> None:
    frame = numeric_frame(800, signal=1.0, seed=4)
    split, _ = split_of(frame)
    shifted = split.X_test.assign(x3=split.X_test["x3"] + 2.0)
    record = check_train_test_shift(
        split.X_train, shifted, settings=SETTINGS, seed=0, by_time=False
    )
    assert record["severity"] == "warn"
    assert list(record["evidence"]["separating_columns"]) == ["x3"]
    alike = check_train_test_shift(
        split.X_train, split.X_test, settings=SETTINGS, seed=0, by_time=False
    )
    assert alike["severity"] == "info"


def baseline_record(signal: float) -> dict:
    frame = numeric_frame(600, signal=signal, seed=5)
    split, profile = split_of(frame)
    model = LogisticRegression().fit(split.X_train, split.y_train)
    predictions = predict_test(model, split.X_test, split.y_test)
    return check_beats_baseline(
        predictions, split, profile=profile, metric="roc_auc", settings=SETTINGS, seed=0
    )


def test_pure_noise_is_reported_as_not_beating_the_baseline() -> None:
    record = baseline_record(signal=0.0)
    assert record["severity"] in ("warn", "fail")
    assert "not" in record["message"].lower()
    assert record["evidence"]["baseline"] == 0.5
    assert record["evidence"]["ci_low"] <= 0


def test_a_real_signal_beats_the_baseline() -> None:
    record = baseline_record(signal=3.0)
    assert record["severity"] == "info"
    assert record["evidence"]["ci_low"] > 0


def family(name: str, score: float, std: float) -> FamilyResult:
    return FamilyResult(name, "completed", best_score=score, best_std=std)


def test_a_lead_smaller_than_the_fold_spread_is_a_coin_toss() -> None:
    toss = check_unstable_folds([family("a", 0.80, 0.05), family("b", 0.79, 0.04)], SETTINGS)
    assert toss["severity"] == "warn" and "coin toss" in toss["message"]
    clear = check_unstable_folds([family("a", 0.90, 0.01), family("b", 0.70, 0.02)], SETTINGS)
    assert clear["severity"] == "info"


def test_a_wide_test_interval_means_a_small_test_set() -> None:
    metrics = {"intervals": {"metrics": {"roc_auc": {"estimate": 0.7, "low": 0.5, "high": 0.85}}}}
    assert check_small_test_set(metrics, "roc_auc", SETTINGS, 40)["severity"] == "warn"
    metrics["intervals"]["metrics"]["roc_auc"].update(low=0.68, high=0.72)
    assert check_small_test_set(metrics, "roc_auc", SETTINGS, 4000)["severity"] == "info"


def test_an_unused_group_column_is_named_with_the_config_line() -> None:
    frame = grouped_frame()
    split, _ = split_of(frame)
    [record] = unused_split_columns(frame, split, SplitConfig(), "label")
    assert record["code"] == "group_overlap" and record["severity"] == "warn"
    assert record["evidence"]["groups_in_train_and_test"] > 0
    assert "split: {groups: patient_id}" in record["message"]


def test_an_unused_date_column_is_named() -> None:
    frame = numeric_frame(300, signal=1.0, seed=6)
    frame["day"] = pd.date_range("2023-01-01", periods=len(frame)).strftime("%Y-%m-%d")
    split, _ = split_of(frame)
    [record] = unused_split_columns(frame, split, SplitConfig(), "label")
    assert record["code"] == "time_overlap" and record["severity"] == "warn"
    assert "split: {time: day}" in record["message"]


def test_a_column_of_many_tied_values_is_not_named_as_separating() -> None:
    """Ties (many zeros) share a bin, whatever the order of the rows."""
    rng = np.random.default_rng(8)
    debt = np.where(rng.random(2000) < 0.7, 0.0, rng.exponential(1000, 2000))
    X = pd.DataFrame({"debt": debt, "x": rng.normal(size=2000)})
    is_test = pd.Series(np.r_[np.zeros(1500, int), np.ones(500, int)])  # test rows come last
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    _, scores = single_feature_scores(X, is_test, "binary", folds)
    assert scores["debt"] < SETTINGS.shift_column_auc


def test_a_column_far_above_the_best_model_is_a_warning() -> None:
    frame = numeric_frame(600, signal=2.0, seed=9)
    split, _ = split_of(frame)
    folds, _ = make_folds(split.y_train, 5, seed=0)
    record = check_target_proxy(
        split.X_train,
        split.y_train,
        task="binary",
        folds=folds,
        best_cv_score=0.55,  # a model that failed to use x1
        settings=SETTINGS,
        seed=0,
        best_metric="roc_auc",
    )
    assert record["severity"] == "warn" and list(record["evidence"]["far_above_best"]) == ["x1"]


def test_an_undefined_selection_metric_falls_back_to_balanced_accuracy() -> None:
    metrics = {
        "intervals": {
            "metrics": {
                "macro_f1": {"estimate": None, "low": None, "high": None},
                "balanced_accuracy": {"estimate": 0.5, "low": 0.35, "high": 0.62},
            }
        }
    }
    record = check_small_test_set(metrics, "f1_macro", SETTINGS, 84)
    assert record["severity"] == "warn" and record["evidence"]["metric"] == "balanced_accuracy"


def overfitting_record(model: object, family_name: str) -> dict:
    frame = numeric_frame(400, signal=0.5, seed=7)
    split, _ = split_of(frame)
    fitted = model.fit(split.X_train, split.y_train)  # type: ignore[attr-defined]
    folds, _ = make_folds(split.y_train, 5, seed=0)
    cv_score = cross_val_score(model, split.X_train, split.y_train, cv=folds, scoring="roc_auc")
    best = FamilyResult(family_name, "completed", best_score=float(cv_score.mean()))
    return check_overfitting(
        fitted,
        split.X_train,
        split.y_train,
        best=best,
        metric="roc_auc",
        scorer="roc_auc",
        settings=SETTINGS,
        seed=0,
    )


def test_a_tree_that_memorises_noise_is_overfitting_and_a_forest_is_not_blamed_for_it() -> None:
    tree = overfitting_record(DecisionTreeClassifier(random_state=0), "decision_tree")
    assert tree["severity"] == "warn" and tree["evidence"]["gap"] > SETTINGS.overfitting_gap
    forest = overfitting_record(
        RandomForestClassifier(n_estimators=50, random_state=0), "random_forest"
    )
    assert forest["evidence"]["gap"] > SETTINGS.overfitting_gap  # the gap is there ...
    assert forest["severity"] == "info" and "bootstrap" in forest["message"]  # ... by design
    linear = overfitting_record(LogisticRegression(), "logistic_regression")
    assert linear["severity"] == "info" and "close" in linear["message"]


def test_a_grouped_regression_is_compared_with_the_mean_on_resampled_groups() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"x": rng.normal(size=300), "patient": rng.integers(0, 40, 300)})
    frame["y"] = 2 * frame["x"] + rng.normal(size=300) * 0.5
    profile = profile_frame(frame.drop(columns="patient"), "y")
    split = split_frame(frame.drop(columns="patient"), profile, 0.3, 0)
    split = replace(split, groups=frame["patient"])
    model = LinearRegression().fit(split.X_train, split.y_train)
    predictions = pd.DataFrame(
        {"y_true": split.y_test.to_numpy(), "y_pred": model.predict(split.X_test)}
    )
    record = check_beats_baseline(
        predictions,
        split,
        profile=profile,
        metric="neg_root_mean_squared_error",
        settings=SETTINGS,
        seed=0,
    )
    assert record["severity"] == "info" and record["evidence"]["resampled"] == "groups"
    assert record["evidence"]["model"] > record["evidence"]["baseline"]  # errors are negated
    assert record["evidence"]["resamples"] == 200 and record["evidence"]["ci_low"] > 0


def test_column_roc_auc_equals_roc_auc_score_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from tasks.evaluation.diagnostics import column_roc_auc

    rng = np.random.default_rng(0)
    positive = rng.random(400) < 0.2
    scores = np.round(rng.normal(size=(400, 5)) + positive[:, None] * np.arange(5) * 0.4, 1)
    expected = [roc_auc_score(positive, scores[:, i]) for i in range(5)]
    np.testing.assert_allclose(column_roc_auc(positive, scores), expected, atol=1e-12)
    assert np.isnan(column_roc_auc(np.zeros(3, dtype=bool), np.ones((3, 2)))).all()
