"""A metric of fixed predictions on bootstrap resamples of the test rows, and the paired
difference of two models' metrics on the same resamples (the champion decision, and whether the
best model beats a dummy).

A resample is a count per row (how often the row was drawn), so every metric is a weighted count
over the original rows and a whole block of resamples takes a few matrix operations. Each metric
equals scikit-learn's on the resampled rows (tests/unit/evaluation/test_paired.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

# Rows x resamples scored at once: 2 MB per float32 array; the label scores hold a few such
# arrays at a time, the ranking scores only the weights and their transposed product. 20,000
# test rows x 1,000 resamples: 16 MB at most in flight and 0.19 s; blocks of 2,000,000 cells
# held 64 MB (the run's memory peak comes after its search) and took 0.29 s (cache misses).
BLOCK_CELLS = 500_000
RANKING_METRICS = ("roc_auc", "average_precision")
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_micro")
# scikit-learn's scorer names of the regression metrics (errors negated: higher is better).
ERROR_METRICS = (
    "neg_root_mean_squared_error",
    "neg_mean_squared_error",
    "neg_mean_absolute_error",
    "r2",
)

# weights (resamples, rows) -> the metric on each resample
ScoreFunction = Callable[[np.ndarray], np.ndarray]


def bootstrap_weight_blocks(
    n_rows: int, n_boot: int, seed: int, groups: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Resample counts per row, (resamples, rows), block by block as they are scored; seeded
    (the draws do not depend on the block size). float32 holds the counts exactly (they never
    exceed n_rows) at half the memory. With groups (split.groups), whole groups are drawn: a
    row counts as often as its group."""
    rng = np.random.default_rng(seed)
    codes = None if groups is None else pd.factorize(groups)[0]
    n_units = n_rows if codes is None else int(codes.max()) + 1
    per_block = max(1, BLOCK_CELLS // max(n_rows, 1))
    for start in range(0, n_boot, per_block):
        size = min(per_block, n_boot - start)
        drawn = rng.integers(0, n_units, size=(size, n_units))
        drawn += np.arange(size)[:, None] * n_units  # resample k in its own range: one bincount
        counts = np.bincount(drawn.ravel(), minlength=size * n_units).reshape(size, n_units)
        yield (counts if codes is None else counts[:, codes]).astype(np.float32)


def threshold_columns(positive: np.ndarray, score: np.ndarray) -> sparse.csr_array:
    """Which sum each row joins, as a rows x (3 x G + 1) 0/1 matrix, G the number of threshold
    groups (rows of tied score) that hold a positive row, ranked by descending score: for group g,
    column 3g the rows ranked between group g - 1 and g, 3g + 1 its negative rows, 3g + 2 its
    positive rows; column 3G the rows below the last. A group without a positive row moves
    neither metric, so `weights @ columns` holds all the metrics need, in one pass over the rows."""
    order = np.argsort(-score, kind="mergesort")
    sorted_positive = positive[order]
    group = np.r_[0, np.cumsum(np.diff(score[order]) != 0)] if len(score) else np.zeros(0, int)
    has_positive = np.zeros(group[-1] + 1 if len(group) else 0, dtype=bool)
    has_positive[group[sorted_positive]] = True
    positive_groups_above = np.cumsum(has_positive) - has_positive
    within = np.where(has_positive[group], np.where(sorted_positive, 2, 1), 0)
    columns = np.empty(len(score), dtype=np.int64)
    columns[order] = 3 * positive_groups_above[group] + within
    shape = (len(score), 3 * int(has_positive.sum()) + 1)
    return sparse.csr_array((np.ones(len(score)), columns, np.arange(len(score) + 1)), shape=shape)


def weighted_ranking_scores(
    positive: np.ndarray,
    score: np.ndarray,
    weights: np.ndarray,
    columns: sparse.csr_array | None = None,
) -> dict[str, np.ndarray]:
    """ROC-AUC and average precision per row of weights (NaN when a class is absent).

    Rows sorted by score, descending; rows with tied scores form one threshold group. With tp and
    n the cumulative positive and total weight at each group's end:
    AP = sum(new positives x precision) / P; AUC = sum(new positives x negatives ranked below,
    ties counted half) / (P x N): the same numbers as sklearn's curves. Only groups with a
    positive row add to either sum (threshold_columns). `columns`: the score's
    threshold_columns, when blocks of resamples score the same predictions."""
    columns = threshold_columns(positive, score) if columns is None else columns
    sums = np.asarray((columns.T @ weights.T).T, dtype=float)  # one pass; float64 sums
    cumulative = np.cumsum(sums, axis=1)
    new_pos, new_neg, seen = sums[:, 2::3], sums[:, 1::3], cumulative[:, 2::3]
    tp = np.cumsum(new_pos, axis=1)
    fp = seen - tp
    n_pos = new_pos.sum(axis=1)
    n_neg = cumulative[:, -1] - n_pos
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        average_precision = np.sum(new_pos * precision, axis=1) / n_pos
        below = n_neg[:, None] - fp + new_neg / 2
        roc_auc = np.sum(new_pos * below, axis=1) / (n_pos * n_neg)
    return {
        "roc_auc": np.where((n_pos == 0) | (n_neg == 0), np.nan, roc_auc),
        "average_precision": np.where(n_pos == 0, np.nan, average_precision),
    }


def weighted_label_scores(
    true_index: np.ndarray,
    pred_index: np.ndarray,
    n_classes: int,
    positive: int | None,
    weights: np.ndarray,
) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and F1 (binary, macro, micro) per row of weights."""
    true_onehot = np.eye(n_classes)[true_index]
    pred_onehot = np.eye(n_classes)[pred_index]
    tp = weights @ (true_onehot * pred_onehot)
    support = weights @ true_onehot
    predicted = weights @ pred_onehot
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample may hold no row of a class
        accuracy = tp.sum(axis=1) / weights.sum(axis=1)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
        scores = {
            "accuracy": accuracy,
            "f1_micro": accuracy,
            "balanced_accuracy": np.nanmean(recall, axis=1),
            "f1_macro": np.nanmean(f1, axis=1),
        }
    if positive is not None:
        scores["f1"] = f1[:, positive]
    return scores


def weighted_error_scores(
    y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """The regression scorers per row of weights, signed as scikit-learn's (errors negated)."""
    total = weights.sum(axis=1)
    centred = y_true - y_true.mean()  # the variance without cancellation at large values

    def mean_of(values: np.ndarray) -> np.ndarray:
        return np.asarray(weights @ values, dtype=float) / total

    squared = mean_of((y_true - y_pred) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - squared / (mean_of(centred**2) - mean_of(centred) ** 2)
    return {
        "neg_root_mean_squared_error": -np.sqrt(squared),
        "neg_mean_squared_error": -squared,
        "neg_mean_absolute_error": -mean_of(np.abs(y_true - y_pred)),
        "r2": r2,
    }


def metric_on_resamples(
    metric: str,
    y_true: pd.Series,
    y_pred: pd.Series,
    *,
    classes: list[str],
    positive_label: str | None,
    positive_score: np.ndarray | None = None,
) -> ScoreFunction:
    """weights (resamples, rows) -> the selection metric per resample, for one model's fixed
    test predictions (labels, or values for regression; the positive class's probability for
    ROC-AUC and average precision)."""
    if metric in ERROR_METRICS:
        truth, values = y_true.to_numpy(dtype=float), y_pred.to_numpy(dtype=float)
        return lambda w: weighted_error_scores(truth, values, w)[metric]
    if (metric in RANKING_METRICS or metric == "f1") and positive_label is None:
        raise ValueError(f"{metric} needs a binary task with a positive label.")
    if metric in RANKING_METRICS:
        if positive_score is None:
            raise ValueError(f"{metric} needs the positive class's probabilities.")
        positive = (y_true == positive_label).to_numpy()
        score = np.asarray(positive_score, dtype=float)
        columns = threshold_columns(positive, score)  # sorted once, not per block of resamples
        return lambda w: weighted_ranking_scores(positive, score, w, columns)[metric]
    if metric not in LABEL_METRICS:
        raise ValueError(f"selection metric '{metric}' cannot be bootstrapped.")
    lookup = {label: k for k, label in enumerate(classes)}
    true_index = y_true.map(lookup).to_numpy(dtype=int)
    pred_index = y_pred.map(lookup).to_numpy(dtype=int)
    positive_index = lookup.get(positive_label) if positive_label is not None else None
    return lambda w: weighted_label_scores(true_index, pred_index, len(classes), positive_index, w)[
        metric
    ]


def paired_difference(
    score_a: ScoreFunction,
    score_b: ScoreFunction,
    n_rows: int,
    *,
    n_boot: int,
    seed: int,
    confidence: float,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Both scores on all rows, their difference (a - b), and its percentile interval over the
    same resamples for both (whole groups when given); the interval is NaN when no resample
    has a defined difference (e.g. ROC-AUC of one-class resamples)."""
    observed = np.ones((1, n_rows))
    a, b = float(score_a(observed)[0]), float(score_b(observed)[0])
    blocks = bootstrap_weight_blocks(n_rows, n_boot, seed, groups)
    differences = np.concatenate([score_a(w) - score_b(w) for w in blocks])
    valid = differences[np.isfinite(differences)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(valid, [tail, 100 - tail]) if valid.size else (np.nan, np.nan)
    return {
        "a": a,
        "b": b,
        "difference": a - b,
        "ci_low": float(low),
        "ci_high": float(high),
        "n_valid_resamples": int(valid.size),
    }
