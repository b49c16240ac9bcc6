"""95% bootstrap intervals for test metrics: seeded, vectorised, fast at a million test rows.

Resampling n rows with replacement gives each row a Multinomial(n, 1/n) count. Metrics built from
the confusion matrix only need the cell totals, which are then Multinomial(n, observed cell shares),
drawn directly in one call. Curve metrics (ROC-AUC, PR-AUC) only need the
per-(distinct score, class) totals, which are likewise multinomial: exact, and fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tasks.evaluation.metrics import fast_confusion_matrix

N_REPLICATES = 1000
CONFIDENCE = 0.95
# Curve metrics bootstrap the (distinct score, class) cells; more distinct scores than this are
# rounded to 3 decimals (at most 1001 groups: a 1000-replicate draw then takes milliseconds).
MAX_SCORE_GROUPS = 2_000
# Regression resamples rows directly: replicates x rows values per chunk bounds the memory.
N_REGRESSION_REPLICATES = 500
CHUNK_ROWS = 5_000_000


def divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, NaN where the denominator is 0 (the replicate has no such rows)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def count_metrics(cells: np.ndarray) -> dict[str, np.ndarray]:
    """The course's metrics per replicate from (B, k, k) confusion matrices.

    Binary (k == 2): of the positive class, which is the second label. Multiclass: macro averages.
    """
    total = cells.sum(axis=(1, 2))
    tp = np.diagonal(cells, axis1=1, axis2=2)
    predicted = cells.sum(axis=1)
    actual = cells.sum(axis=2)
    fp, fn = predicted - tp, actual - tp
    tn = total[:, None] - tp - fp - fn
    precision, recall = divide(tp, tp + fp), divide(tp, tp + fn)
    per_class = {
        "precision": precision,
        "recall": recall,
        "specificity": divide(tn, tn + fp),
        "npv": divide(tn, tn + fn),
        "f1": divide(2 * precision * recall, precision + recall),
    }
    result = {"accuracy": divide(tp.sum(axis=1), total)}
    if cells.shape[1] == 2:
        result.update({name: values[:, 1] for name, values in per_class.items()})
    else:
        result.update({f"macro_{name}": values.mean(axis=1) for name, values in per_class.items()})
    result["balanced_accuracy"] = np.nanmean(per_class["recall"], axis=1)
    return result


def percentile_interval(values: np.ndarray, point: float | None) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or point is None:
        return {"estimate": point, "low": None, "high": None}
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return {"estimate": point, "low": float(low), "high": float(high)}


def weighted_roc_auc(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """ROC-AUC per replicate from weights per distinct score (descending); ties count half."""
    negatives_below = negative.sum(axis=1, keepdims=True) - np.cumsum(negative, axis=1)
    concordant = (positive * (negatives_below + 0.5 * negative)).sum(axis=1)
    return divide(concordant, positive.sum(axis=1) * negative.sum(axis=1))


def weighted_average_precision(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Average precision per replicate: precision at each distinct score, weighted by the
    positives gained there (sklearn's step-wise definition)."""
    true_positives = np.cumsum(positive, axis=1)
    precision = divide(true_positives, true_positives + np.cumsum(negative, axis=1))
    return divide((positive * np.nan_to_num(precision)).sum(axis=1), positive.sum(axis=1))


def score_cells(is_positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative row counts per distinct score, highest score first. Beyond
    MAX_SCORE_GROUPS distinct scores, scores are rounded to 3 decimals (at most 1001 groups)."""
    if len(np.unique(score)) > MAX_SCORE_GROUPS:
        score = np.round(score, 3)
    groups, group_of_row = np.unique(-score, return_inverse=True)
    positive = np.bincount(group_of_row, weights=is_positive.astype(float), minlength=len(groups))
    negative = np.bincount(
        group_of_row, weights=(~is_positive).astype(float), minlength=len(groups)
    )
    return positive, negative


def curve_replicates(
    is_positive: np.ndarray,
    score: np.ndarray,
    statistics: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]],
    rng: np.random.Generator,
    n_replicates: int,
) -> dict[str, np.ndarray]:
    """Each statistic on the same bootstrap resamples of (is_positive, score): the resampled
    (score, class) cell totals are Multinomial(n, observed cell shares), drawn directly."""
    positive, negative = score_cells(is_positive, score)
    cells = np.concatenate([positive, negative])
    n_rows = int(cells.sum())
    draws = rng.multinomial(n_rows, cells / n_rows, size=n_replicates).astype(float)
    resampled_positive, resampled_negative = np.split(draws, 2, axis=1)
    return {
        name: statistic(resampled_positive, resampled_negative)
        for name, statistic in statistics.items()
    }


def bootstrap_intervals(
    y_true: pd.Series,
    y_pred: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
    seed: int,
    point_estimates: dict[str, float | None],
) -> dict[str, Any]:
    """95% percentile intervals of the headline test metrics."""
    rng = np.random.default_rng(seed)
    labels = classes
    if positive_label is not None:  # the positive class last, so count_metrics reads index 1
        labels = [c for c in classes if c != positive_label] + [positive_label]
    matrix = fast_confusion_matrix(y_true, y_pred, labels)
    n_rows = int(matrix.sum())
    draws = rng.multinomial(n_rows, matrix.ravel() / n_rows, size=N_REPLICATES)
    replicates = count_metrics(draws.reshape(N_REPLICATES, len(labels), len(labels)))
    if positive_label is not None:
        is_positive = (y_true == positive_label).to_numpy()
        score = probabilities[positive_label].to_numpy()
        replicates.update(
            curve_replicates(
                is_positive,
                score,
                {"roc_auc": weighted_roc_auc, "average_precision": weighted_average_precision},
                rng,
                N_REPLICATES,
            )
        )
    return {
        "method": f"percentile bootstrap over test rows, {N_REPLICATES} replicates, seed {seed}"
        + (
            ""
            if len(y_true) <= MAX_SCORE_GROUPS
            else "; curve metrics on scores rounded to 3 decimals"
        ),
        "confidence": CONFIDENCE,
        "metrics": {
            name: percentile_interval(values, point_estimates.get(name))
            for name, values in replicates.items()
            if name in point_estimates
        },
    }


def regression_replicates(
    y_true: np.ndarray, y_pred: np.ndarray, rng: np.random.Generator, n_replicates: int
) -> dict[str, np.ndarray]:
    """MSE, RMSE, MAE and R² on bootstrap resamples, as weighted sums over row draw counts."""
    n_rows = len(y_true)
    chunk = max(1, CHUNK_ROWS // max(n_rows, 1))
    parts: dict[str, list[np.ndarray]] = {"mse": [], "mae": [], "r2": []}
    for start in range(0, n_replicates, chunk):
        size = min(chunk, n_replicates - start)
        draws = rng.integers(0, n_rows, size=(size, n_rows))
        truth, predicted = y_true[draws], y_pred[draws]
        squared = ((truth - predicted) ** 2).mean(axis=1)
        parts["mse"].append(squared)
        parts["mae"].append(np.abs(truth - predicted).mean(axis=1))
        parts["r2"].append(1 - divide(squared, truth.var(axis=1)))
    replicates = {name: np.concatenate(values) for name, values in parts.items()}
    replicates["rmse"] = np.sqrt(replicates["mse"])
    return replicates


def regression_intervals(
    y_true: pd.Series, y_pred: pd.Series, seed: int, point_estimates: dict[str, float | None]
) -> dict[str, Any]:
    """95% percentile intervals of the regression test metrics."""
    rng = np.random.default_rng(seed)
    replicates = regression_replicates(
        y_true.to_numpy(dtype=float), y_pred.to_numpy(dtype=float), rng, N_REGRESSION_REPLICATES
    )
    return {
        "method": f"percentile bootstrap over test rows, {N_REGRESSION_REPLICATES} replicates, "
        f"seed {seed}",
        "confidence": CONFIDENCE,
        "metrics": {
            name: percentile_interval(values, point_estimates.get(name))
            for name, values in replicates.items()
            if name in point_estimates
        },
    }
