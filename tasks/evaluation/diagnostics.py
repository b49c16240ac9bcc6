"""Diagnostics with stable codes: leakage and weak evidence that no fold audit can see.

Each check returns one record: `code` (stable, documented in docs/trust.md), `severity`
(info / warn / fail), a one-line `message`, and its `evidence` as numbers. Every check is cheap:
rows are capped (`diagnostics.max_rows`), models are small and single-threaded, and everything is
seeded, so metrics.json stays byte-identical for the same data, config and seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import (
    balanced_accuracy_score,
    check_scoring,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold, cross_val_predict
from sklearn.preprocessing import OrdinalEncoder, TargetEncoder
from threadpoolctl import threadpool_limits

from tasks.config import DiagnosticsConfig, SplitConfig
from tasks.data.profile import DataProfile
from tasks.data.split import DataSplit, GroupFolds, fast_labels, sortable_times
from tasks.data.split_columns import likely_group_column, likely_time_column
from tasks.evaluation.paired import metric_on_resamples, paired_difference
from tasks.model_selection.search import FamilyResult

SEVERITIES = ("info", "warn", "fail")
# Numeric columns with more distinct values are cut into this many quantile bins.
N_BINS = 20
BASELINE_RESAMPLES = 200
# Families whose training score is near perfect by construction (deep trees on bootstrap samples,
# averaged): a training/CV gap is expected of them, not a warning.
FITS_ITS_TRAINING_ROWS_BY_DESIGN = frozenset({"random_forest"})
ADVERSARIAL_FOLDS = 3
TOP_COLUMNS = 5
ERROR_METRICS = {
    "neg_root_mean_squared_error": "rmse",
    "neg_mean_squared_error": "mse",
    "neg_mean_absolute_error": "mae",
}
INTERVAL_NAMES = {
    **ERROR_METRICS,
    "f1_macro": "macro_f1",
    "f1_micro": "micro_f1",
}


def diagnostic(code: str, severity: str, message: str, **evidence: Any) -> dict[str, Any]:
    """One diagnostic record (severity one of info, warn, fail)."""
    assert severity in SEVERITIES
    return {"code": code, "severity": severity, "message": message, "evidence": evidence}


def rounded(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def capped(X: pd.DataFrame, y: pd.Series, max_rows: int, seed: int) -> tuple[pd.DataFrame, Any]:
    """At most max_rows rows (a seeded sample, row index kept)."""
    if len(X) <= max_rows:
        return X, y
    rows = X.sample(n=max_rows, random_state=seed).index
    return X.loc[rows], y.loc[rows]


# One column at a time: out-of-fold target encoding of the column's levels (numbers binned).


def binned_levels(X: pd.DataFrame) -> pd.DataFrame:
    """Each column as levels: quantile bins for numbers with many values, missing as a level.
    Levels are integer codes (the target encoder groups integers far faster than text)."""
    levels = {}
    for column in X.columns:
        series = X[column]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric and series.nunique() > N_BINS:
            # Tied values share a bin (ranking them 'first' would split ties by row order).
            series = pd.qcut(series, N_BINS, labels=False, duplicates="drop")
        levels[column] = pd.factorize(series, use_na_sentinel=False)[0]
    return pd.DataFrame(levels, index=X.index)


def out_of_fold_encoding(
    levels: pd.DataFrame, y: pd.Series, target_type: str, folds: BaseCrossValidator
) -> tuple[np.ndarray, np.ndarray, TargetEncoder]:
    """Target encoding of every column, each row encoded by a fit on the other folds only.
    Returns the encodings of the rows some fold validated, and those rows' positions."""
    encoded: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    encoder = TargetEncoder(target_type=target_type)
    for train, validation in folds.split(levels, y):
        if len(validation) == 0:
            continue
        encoder = TargetEncoder(target_type=target_type)
        encoder.fit(levels.iloc[train], y.iloc[train])
        encoded.append(encoder.transform(levels.iloc[validation]))
        positions.append(validation)
    return np.vstack(encoded), np.concatenate(positions), encoder


def single_feature_scores(
    X: pd.DataFrame, y: pd.Series, task: str, folds: BaseCrossValidator
) -> tuple[str, dict[str, float]]:
    """Each column's own cross-validated score: ROC-AUC (binary), balanced accuracy
    (multiclass) or R² (regression), from the out-of-fold target encoding of its levels."""
    target_type = {"binary": "binary", "multiclass": "multiclass"}.get(task, "continuous")
    levels = binned_levels(X)
    encoded, positions, encoder = out_of_fold_encoding(levels, y, target_type, folds)
    truth = y.iloc[positions]
    scores: dict[str, float] = {}
    if target_type == "binary":
        positive = (truth == encoder.classes_[1]).to_numpy()
        aucs = column_roc_auc(positive, encoded)
        return "roc_auc", dict(zip(map(str, X.columns), aucs, strict=True))
    if target_type == "multiclass":
        classes = np.asarray(encoder.classes_)
        k = len(classes)
        prior = truth.value_counts(normalize=True).reindex(classes).fillna(1e-9).to_numpy()
        for i, column in enumerate(X.columns):
            lift = encoded[:, i * k : (i + 1) * k] / prior
            predicted = classes[lift.argmax(axis=1)]
            scores[str(column)] = float(balanced_accuracy_score(truth, predicted))
        return "balanced_accuracy", scores
    for i, column in enumerate(X.columns):
        scores[str(column)] = float(r2_score(truth, encoded[:, i]))
    return "r2", scores


def column_roc_auc(positive: np.ndarray, scores: np.ndarray) -> list[float]:
    """roc_auc_score of each column of `scores`, all at once: the Mann-Whitney U of the positive
    rows' average ranks (ties share a rank, as in roc_auc_score), over n_positive x n_negative."""
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return [math.nan] * scores.shape[1]
    ranks = rankdata(scores, axis=0)
    u = ranks[positive].sum(axis=0) - n_positive * (n_positive + 1) / 2
    return [float(value) for value in u / (n_positive * n_negative)]


def top_scores(scores: dict[str, float], n: int = TOP_COLUMNS) -> dict[str, float | None]:
    best = sorted(scores.items(), key=lambda item: -item[1])[:n]
    return {column: rounded(score) for column, score in best}


def check_target_proxy(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    task: str,
    folds: BaseCrossValidator,
    best_cv_score: float | None,
    settings: DiagnosticsConfig,
    seed: int,
    best_metric: str | None = None,
) -> dict[str, Any]:
    """target_proxy: a single column whose own cross-validated score is near perfect (fail),
    or far above the best model's CV score on the same metric (warn: the model cannot use it
    as well as a lookup of its values can, which a disguised target explains)."""
    X, y = capped(X_train, y_train, settings.max_rows, seed)
    metric, scores = single_feature_scores(X, y, task, folds)
    threshold = {
        "roc_auc": settings.proxy_auc,
        "balanced_accuracy": settings.proxy_balanced_accuracy,
        "r2": settings.proxy_r2,
    }[metric]
    proxies = {column: score for column, score in scores.items() if score >= threshold}
    evidence = {
        "metric": metric,
        "threshold": threshold,
        "rows": len(X),
        "best_model_cv_score": rounded(best_cv_score),
        "top_columns": top_scores(scores),
    }
    comparable = best_metric == metric and best_cv_score is not None
    above = {
        column: score
        for column, score in scores.items()
        if comparable and score >= (best_cv_score or 0.0) + settings.proxy_margin
    }
    if not proxies and above:
        named = ", ".join(f"'{c}' ({metric} {s:.3f})" for c, s in sorted(above.items()))
        return diagnostic(
            "target_proxy",
            "warn",
            f"Column(s) {named} alone score far above the best model (CV {metric} "
            f"{best_cv_score:.3f}): check that they are known at prediction time.",
            far_above_best={column: rounded(score) for column, score in above.items()},
            margin=settings.proxy_margin,
            **evidence,
        )
    if not proxies:
        return diagnostic(
            "target_proxy",
            "info",
            f"No single column predicts the target on its own (best alone: {metric} "
            f"{max(scores.values(), default=float('nan')):.3f}).",
            **evidence,
        )
    named = ", ".join(f"'{c}' ({metric} {s:.3f})" for c, s in sorted(proxies.items()))
    return diagnostic(
        "target_proxy",
        "fail",
        f"Column(s) {named} alone predict the target almost perfectly: a target in disguise "
        "(recorded after the outcome?); leave them out (drop_columns) unless they are known at "
        "prediction time.",
        proxies={column: rounded(score) for column, score in proxies.items()},
        **evidence,
    )


def row_hashes(X: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(X, index=False)


def check_duplicates(
    X_train: pd.DataFrame, X_test: pd.DataFrame, settings: DiagnosticsConfig
) -> dict[str, Any]:
    """duplicates_across_split: test rows whose feature values equal a training row's."""
    train_hashes = row_hashes(X_train)
    in_train = row_hashes(X_test).isin(train_hashes.to_numpy())  # a hash table, not a set
    count, share = int(in_train.sum()), float(in_train.mean()) if len(X_test) else 0.0
    # How much the table repeats itself: training rows equal to another training row.
    within_train = float(train_hashes.duplicated(keep=False).mean()) if len(X_train) else 0.0
    evidence = {
        "test_rows_also_in_train": count,
        "share_of_test_rows": rounded(share),
        "share_of_training_rows_repeated_in_training": rounded(within_train),
        "threshold": settings.duplicates_share,
    }
    if count == 0:
        return diagnostic(
            "duplicates_across_split",
            "info",
            "No test row repeats a training row's feature values.",
            **evidence,
        )
    severity = "warn" if share >= settings.duplicates_share else "info"
    return diagnostic(
        "duplicates_across_split",
        severity,
        f"{count} test row(s) ({share:.1%}) repeat a training row's feature values exactly "
        f"({within_train:.1%} of training rows repeat one within training): the test score "
        "partly measures memory; natural for a table of few discrete columns, else drop "
        "duplicate records.",
        **evidence,
    )


def ordinal_matrix(X: pd.DataFrame) -> np.ndarray:
    """Numbers as they are, other columns as ordinal codes (missing: -2), for a tree model."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    parts = [X[numeric].to_numpy(dtype=float)] if numeric else []
    if other:
        encoder = OrdinalEncoder(encoded_missing_value=-2)
        parts.append(encoder.fit_transform(X[other].astype(str).where(X[other].notna())))
    return np.hstack(parts) if parts else np.zeros((len(X), 0))


def check_train_test_shift(
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    *,
    settings: DiagnosticsConfig,
    seed: int,
    by_time: bool,
    groups: pd.Series | None = None,
) -> dict[str, Any]:
    """train_test_shift: adversarial validation, a classifier telling test rows from training
    rows (cross-validated ROC-AUC; 0.5 means they look alike), and the columns that tell them
    apart on their own. With groups, its folds keep groups whole (else it would learn to
    recognise the groups, which a group split puts on one side by design)."""
    half = settings.max_rows // 2
    train = X_train.sample(n=min(half, len(X_train)), random_state=seed)
    test = X_test.sample(n=min(half, len(X_test)), random_state=seed)
    rows = pd.concat([train, test])
    is_test = pd.Series([0] * len(train) + [1] * len(test), index=rows.index)
    folds: BaseCrossValidator = StratifiedKFold(ADVERSARIAL_FOLDS, shuffle=True, random_state=seed)
    if groups is not None:
        folds = GroupFolds(groups, ADVERSARIAL_FOLDS, seed, stratified=True)
    if is_test.value_counts().min() < ADVERSARIAL_FOLDS:
        return diagnostic(
            "train_test_shift", "info", "Too few test rows to check for a shift.", auc=None
        )
    model = HistGradientBoostingClassifier(max_iter=50, random_state=seed)
    with threadpool_limits(limits=1):
        scores = cross_val_predict(
            model,
            pd.DataFrame(ordinal_matrix(rows), index=rows.index),
            is_test,
            cv=folds,
            method="predict_proba",
        )[:, 1]
    auc = float(roc_auc_score(is_test, scores))
    separating: dict[str, float] = {}
    if auc >= settings.shift_auc:  # naming the columns costs as much again: only when needed
        _, column_aucs = single_feature_scores(rows, is_test, "binary", folds)
        separating = {c: s for c, s in column_aucs.items() if s >= settings.shift_column_auc}
    evidence = {
        "auc": rounded(auc),
        "threshold": settings.shift_auc,
        "rows": len(rows),
        "separating_columns": top_scores(separating),
    }
    if auc < settings.shift_auc:
        return diagnostic(
            "train_test_shift",
            "info",
            f"Training and test rows look alike (adversarial ROC-AUC {auc:.3f}).",
            **evidence,
        )
    named = ", ".join(f"'{c}'" for c in top_scores(separating)) or "no single column"
    expected = " (expected for a split by time: the test period differs)" if by_time else ""
    return diagnostic(
        "train_test_shift",
        "warn",
        f"A classifier tells test rows from training rows (ROC-AUC {auc:.3f}){expected}; "
        f"columns that separate them: {named}.",
        **evidence,
    )


def random_split_is_not_shifted() -> dict[str, Any]:
    """train_test_shift of a random split: its two sides are draws from one table, so a
    classifier could only learn noise (half a second at 100,000 rows). The order a random
    split can miss, by time or by group, is for time_overlap and group_overlap to find."""
    return diagnostic(
        "train_test_shift",
        "info",
        "Rows were split at random, so training and test rows come from the same table: "
        "no shift to look for.",
        auc=None,
        split="random",
    )


# beats_baseline: the best model against a dummy on the same test rows, paired bootstrap.


def dummy_predictions(
    split: DataSplit, profile: DataProfile
) -> tuple[pd.Series, np.ndarray | None]:
    """A dummy fitted on the training rows: the class prior (or the mean), on the test rows."""
    if profile.task == "regression":
        regressor = DummyRegressor().fit(split.X_train, split.y_train)
        return pd.Series(regressor.predict(split.X_test)), None
    # Fixed-width labels: its np.unique over Python strings took 0.4 s at 800,000 rows.
    classifier = DummyClassifier(strategy="prior").fit(split.X_train, fast_labels(split.y_train))
    probability = None
    if profile.positive_label is not None:
        column = list(classifier.classes_).index(profile.positive_label)
        probability = classifier.predict_proba(split.X_test)[:, column]
    return pd.Series(classifier.predict(split.X_test)), probability


def check_beats_baseline(
    predictions: pd.DataFrame,
    split: DataSplit,
    *,
    profile: DataProfile,
    metric: str,
    settings: DiagnosticsConfig,
    seed: int,
) -> dict[str, Any]:
    """beats_baseline: does the best model beat a dummy on the same test rows, beyond noise?"""
    regression = profile.task == "regression"
    y_true = predictions["y_true"].reset_index(drop=True)
    y_true = y_true.astype(float) if regression else y_true.astype(str)
    y_pred = predictions["y_pred"].reset_index(drop=True)
    y_pred = y_pred.astype(float) if regression else y_pred.astype(str)
    positive = profile.positive_label
    probability = None
    if positive is not None and positive in predictions.columns:
        probability = predictions[positive].to_numpy(dtype=float)
    elif positive is not None and f"proba_{positive}" in predictions.columns:
        probability = predictions[f"proba_{positive}"].to_numpy(dtype=float)
    dummy_pred, dummy_probability = dummy_predictions(split, profile)
    if not regression:
        dummy_pred = dummy_pred.astype(str)
    labels = (
        [] if regression else sorted(pd.unique(pd.concat([y_true, y_pred, dummy_pred])), key=str)
    )
    try:
        score_best, score_dummy = (
            metric_on_resamples(
                metric,
                y_true,
                predicted,
                classes=labels,
                positive_label=positive,
                positive_score=score,
            )
            for predicted, score in ((y_pred, probability), (dummy_pred, dummy_probability))
        )
    except ValueError as error:
        return diagnostic("beats_baseline", "info", f"Not checked: {error}.")
    groups = None
    if split.groups is not None:
        groups = split.groups.loc[split.X_test.index].to_numpy()
    paired = paired_difference(
        score_best,
        score_dummy,
        len(y_true),
        n_boot=BASELINE_RESAMPLES,
        seed=seed,
        confidence=settings.baseline_confidence,
        groups=groups,
    )
    estimate = paired["difference"]
    low, high = (
        (None, None) if not paired["n_valid_resamples"] else (paired["ci_low"], paired["ci_high"])
    )
    evidence = {
        "metric": metric,
        "model": rounded(paired["a"]),
        "baseline": rounded(paired["b"]),
        "difference": rounded(estimate),
        "ci_low": rounded(low),
        "ci_high": rounded(high),
        "confidence": settings.baseline_confidence,
        "resamples": paired["n_valid_resamples"],
        "resampled": "groups" if groups is not None else "rows",
    }
    baseline = "DummyRegressor (mean)" if regression else "DummyClassifier (class prior)"
    if low is not None and low > 0:
        return diagnostic(
            "beats_baseline",
            "info",
            f"The best model beats the baseline ({baseline}) by {estimate:.4f} {metric} "
            f"(interval {low:.4f} to {high:.4f}).",
            **evidence,
        )
    if estimate <= 0:
        return diagnostic(
            "beats_baseline",
            "fail",
            f"The best model does NOT beat the baseline ({baseline}) on the test rows: "
            f"{metric} difference {estimate:.4f}; its predictions are no better than a guess.",
            **evidence,
        )
    interval = f" (interval {low:.4f} to {high:.4f})" if low is not None else ""
    return diagnostic(
        "beats_baseline",
        "warn",
        f"The best model is not clearly better than the baseline ({baseline}): {metric} "
        f"difference {estimate:.4f}{interval} includes 0.",
        **evidence,
    )


def check_overfitting(
    model: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    best: FamilyResult,
    metric: str,
    scorer: Any,
    settings: DiagnosticsConfig,
    seed: int,
) -> dict[str, Any]:
    """overfitting: the best candidate's score on its own training rows against its CV score
    (for error metrics, the gap relative to the CV error)."""
    X, y = capped(X_train, y_train, settings.max_rows, seed)
    train_score = float(check_scoring(model, scoring=scorer)(model, X, y))
    cv_score = best.best_score
    if cv_score is None:
        return diagnostic("overfitting", "info", "Not checked: no CV score.")
    relative = metric in ERROR_METRICS
    gap = (
        (train_score - cv_score) / abs(cv_score)
        if relative and cv_score
        else train_score - cv_score
    )
    evidence = {
        "metric": metric,
        "train_score": rounded(train_score),
        "cv_score": rounded(cv_score),
        "gap": rounded(gap),
        "gap_is_relative": relative,
        "threshold": settings.overfitting_gap,
    }
    if gap <= settings.overfitting_gap:
        return diagnostic(
            "overfitting",
            "info",
            f"Training and CV scores are close ({metric} {train_score:.4f} vs {cv_score:.4f}).",
            **evidence,
        )
    if best.family in FITS_ITS_TRAINING_ROWS_BY_DESIGN:
        return diagnostic(
            "overfitting",
            "info",
            f"The best model ({best.family}) scores {train_score:.4f} on its training rows and "
            f"{cv_score:.4f} in CV: its trees are grown on bootstrap samples until they fit them, "
            "so the gap says nothing; the CV score is its honest measure.",
            **evidence,
        )
    return diagnostic(
        "overfitting",
        "warn",
        f"The best model ({best.family}) scores {train_score:.4f} on its training rows but "
        f"{cv_score:.4f} in CV (gap {gap:.3f}{' relative' if relative else ''}): it fits "
        "noise; a simpler or more regularised model may do as well.",
        **evidence,
    )


def check_unstable_folds(
    results: list[FamilyResult], settings: DiagnosticsConfig
) -> dict[str, Any]:
    """unstable_folds: the gap between the two best families against the fold spread."""
    completed = sorted(
        (r for r in results if r.status == "completed" and r.best_score is not None),
        key=lambda r: -(r.best_score or 0.0),
    )
    if len(completed) < 2:
        return diagnostic("unstable_folds", "info", "Only one model family to compare.")
    first, second = completed[0], completed[1]
    assert first.best_score is not None and second.best_score is not None
    gap = first.best_score - second.best_score
    spread = first.best_std or 0.0
    evidence = {
        "best": first.family,
        "runner_up": second.family,
        "gap": rounded(gap),
        "cv_std": rounded(spread),
        "ratio": settings.unstable_ratio,
    }
    if gap >= settings.unstable_ratio * spread:
        return diagnostic(
            "unstable_folds",
            "info",
            f"{first.family} leads {second.family} by {gap:.4f}, more than the fold standard "
            f"deviation {spread:.4f}.",
            **evidence,
        )
    return diagnostic(
        "unstable_folds",
        "warn",
        f"{first.family} leads {second.family} by only {gap:.4f}, less than the fold standard "
        f"deviation {spread:.4f}: the winner is a coin toss.",
        **evidence,
    )


def check_small_test_set(
    test_metrics: dict[str, Any], metric: str, settings: DiagnosticsConfig, n_test: int
) -> dict[str, Any]:
    """small_test_set: the width of the selection metric's 95% test interval (relative to the
    estimate for error metrics); balanced accuracy's when the metric is undefined on the test
    set (a class never predicted leaves macro F1 undefined)."""
    intervals = test_metrics.get("intervals", {}).get("metrics", {})
    name = INTERVAL_NAMES.get(metric, metric)
    interval = intervals.get(name, {})
    if interval.get("low") is None and (intervals.get("balanced_accuracy") or {}).get("low"):
        name, interval = "balanced_accuracy", intervals["balanced_accuracy"]
    low, high = interval.get("low"), interval.get("high")
    if low is None or high is None:
        return diagnostic("small_test_set", "info", f"No interval for {metric}.", n_test=n_test)
    width = high - low
    relative = metric in ERROR_METRICS
    estimate = interval.get("estimate")
    if relative and estimate:
        width = width / abs(estimate)
    evidence = {
        "metric": name,
        "low": rounded(low),
        "high": rounded(high),
        "width": rounded(width),
        "width_is_relative": relative,
        "threshold": settings.test_interval_width,
        "n_test": n_test,
    }
    if width <= settings.test_interval_width:
        return diagnostic(
            "small_test_set",
            "info",
            f"The test {name} interval is {low:.4f} to {high:.4f} ({n_test} rows).",
            **evidence,
        )
    return diagnostic(
        "small_test_set",
        "warn",
        f"The test set ({n_test} rows) is small for {name}: its 95% interval spans "
        f"{low:.4f} to {high:.4f}; differences smaller than that are noise.",
        **evidence,
    )


def check_group_overlap(frame: pd.DataFrame, split: DataSplit, column: str) -> dict[str, Any]:
    """group_overlap: a likely group column the split did not use, and how it leaks."""
    train_groups = set(frame.loc[split.X_train.index, column].dropna())
    test_values = frame.loc[split.X_test.index, column]
    shared = train_groups.intersection(test_values.dropna())
    rows = int(test_values.isin(shared).sum())
    evidence = {
        "column": column,
        "groups": int(frame[column].nunique()),
        "groups_in_train_and_test": len(shared),
        "test_rows_of_shared_groups": rows,
        "config": f"split: {{groups: {column}}}",
    }
    if not shared:
        return diagnostic(
            "group_overlap",
            "info",
            f"Column '{column}' looks like a group key; no group is in both train and test.",
            **evidence,
        )
    return diagnostic(
        "group_overlap",
        "warn",
        f"Column '{column}' looks like a group key and the split is random: {len(shared)} "
        f"group(s) ({rows} test rows) are in both train and test, so the test score includes "
        f"groups the model has seen; keep them apart with `split: {{groups: {column}}}` "
        f"(--set split.groups={column}).",
        **evidence,
    )


def check_time_overlap(frame: pd.DataFrame, split: DataSplit, column: str) -> dict[str, Any]:
    """time_overlap: a date column the split did not use; test rows earlier than training."""
    evidence: dict[str, Any] = {"column": column, "config": f"split: {{time: {column}}}"}
    try:
        times = sortable_times(frame.loc[frame[column].notna(), column], column)
    except Exception:  # a column that only looked like dates: say so, do not fail the run
        return diagnostic("time_overlap", "info", f"Column '{column}' could not be read as dates.")
    latest_train = times.reindex(split.X_train.index).max()
    test_times = times.reindex(split.X_test.index).dropna()
    earlier = int((test_times < latest_train).sum())
    evidence.update(
        test_rows_before_latest_training_row=earlier,
        share_of_test_rows=rounded(earlier / len(test_times)) if len(test_times) else None,
    )
    if earlier == 0:
        return diagnostic(
            "time_overlap",
            "info",
            f"Column '{column}' holds dates; every test row is later than the training rows.",
            **evidence,
        )
    return diagnostic(
        "time_overlap",
        "warn",
        f"Column '{column}' holds dates and the split is random: {earlier} test row(s) are "
        "earlier than the latest training row, so the model trains on the future; test on the "
        f"latest period with `split: {{time: {column}}}` (--set split.time={column}).",
        **evidence,
    )


def unused_split_columns(
    frame: pd.DataFrame, split: DataSplit, settings: SplitConfig, target: str
) -> list[dict[str, Any]]:
    """group_overlap / time_overlap for a detected group or time column the split ignores."""
    used = tuple(c for c in (settings.groups, settings.time, target) if c)
    rows = split.X_train.index.append(split.X_test.index)
    labelled = frame if len(rows) == len(frame) else frame.loc[rows]  # every row has a label
    records = []
    if not settings.groups:
        group_column = likely_group_column(labelled, exclude=used)
        if group_column:
            records.append(check_group_overlap(frame, split, group_column))
    if not settings.time:
        time_column = likely_time_column(labelled, exclude=used)
        if time_column:
            records.append(check_time_overlap(frame, split, time_column))
    return records


def guarded(code: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A check that cannot be computed on this data is recorded as such; it never sinks a run."""
    try:
        return check()
    except (ValueError, IndexError) as error:
        return diagnostic(code, "info", f"Not checked on this data: {error}".rstrip(".") + ".")


@dataclass(frozen=True)
class RunEvidence:
    """What a finished search leaves for the diagnostics to examine."""

    frame: pd.DataFrame
    split: DataSplit
    profile: DataProfile
    model: Any
    best: FamilyResult
    results: list[FamilyResult]
    predictions: pd.DataFrame
    test_metrics: dict[str, Any]
    metric: str
    folds: BaseCrossValidator
    split_settings: SplitConfig


def run_diagnostics(
    evidence: RunEvidence, *, scorer: Any, settings: DiagnosticsConfig, seed: int
) -> list[dict[str, Any]]:
    """Every diagnostic of a supervised run, fails and warnings first."""
    if not settings.enabled:
        return []
    frame, split, profile, best = evidence.frame, evidence.split, evidence.profile, evidence.best
    metric, folds = evidence.metric, evidence.folds
    checks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        (
            "target_proxy",
            lambda: check_target_proxy(
                split.X_train,
                split.y_train,
                task=profile.task,
                folds=folds,
                best_cv_score=best.best_score,
                settings=settings,
                seed=seed,
                best_metric=metric,
            ),
        ),
        (
            "duplicates_across_split",
            lambda: check_duplicates(split.X_train, split.X_test, settings),
        ),
        (
            "train_test_shift",
            lambda: (
                check_train_test_shift(
                    split.X_train,
                    split.X_test,
                    settings=settings,
                    seed=seed,
                    by_time=split.times is not None,
                    groups=split.groups,
                )
                if split.times is not None or split.groups is not None
                else random_split_is_not_shifted()
            ),
        ),
        (
            "beats_baseline",
            lambda: check_beats_baseline(
                evidence.predictions,
                split,
                profile=profile,
                metric=metric,
                settings=settings,
                seed=seed,
            ),
        ),
        (
            "overfitting",
            lambda: check_overfitting(
                evidence.model,
                split.X_train,
                split.y_train,
                best=best,
                metric=metric,
                scorer=scorer,
                settings=settings,
                seed=seed,
            ),
        ),
        ("unstable_folds", lambda: check_unstable_folds(evidence.results, settings)),
        (
            "small_test_set",
            lambda: check_small_test_set(
                evidence.test_metrics, metric, settings, len(split.y_test)
            ),
        ),
    ]
    records = [guarded(code, check) for code, check in checks]
    records += unused_split_columns(frame, split, evidence.split_settings, profile.target)
    order = {"fail": 0, "warn": 1, "info": 2}
    return sorted(records, key=lambda record: order[record["severity"]])
