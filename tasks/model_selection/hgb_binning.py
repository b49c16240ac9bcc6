"""Histogram gradient boosting's weighted binning, computed in one pass: a backport of
scikit-learn's own fix (scikit-learn/scikit-learn#34248, merged for the release after 1.9).

With sample weights (class weights are sample weights) and fewer than 200,000 rows,
scikit-learn 1.9 finds each feature's 254 bin thresholds with one `_weighted_percentile` call
per threshold: each call sorts the column and sums its weights again. Measured on this machine:
a class-weighted fit of 400 rows took 3.3 s against 0.2 s unweighted, 80,000 rows 8.1 s against
0.4 s; it was most of the search on every imbalanced table. The thresholds here are the same
numbers (tests/unit/model_selection/test_hgb_binning.py compares them with scikit-learn's, bit
for bit, ties, NaNs and zero weights included): the column is sorted and its weights summed
once, then every percentile is located with one vectorized search, by the same arithmetic as
`sklearn.utils.stats._weighted_percentile(..., average=True)`.

`use_fast_weighted_binning()` installs it, only on the scikit-learn versions it was checked
against; a process where it is not installed fits the same models, more slowly."""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.ensemble._hist_gradient_boosting import binning
from sklearn.ensemble._hist_gradient_boosting.common import ALMOST_INF, X_DTYPE

# The releases whose `_find_binning_thresholds` this reproduces (the fix ships after them).
CHECKED_VERSIONS = ("1.9.0", "1.9.1")
SLOW_ORIGINAL = binning._find_binning_thresholds


def weighted_percentiles(
    values: np.ndarray, weights: np.ndarray, percentile_ranks: np.ndarray
) -> np.ndarray:
    """`_weighted_percentile(values, weights, percentile_ranks, average=True)` for a 1-D column
    without NaNs, all ranks at once."""
    column = values.reshape(-1, 1)
    sorted_idx = np.argsort(column, axis=0)[:, 0]  # the same sort scikit-learn does
    weight_cdf = np.cumsum(weights[sorted_idx])
    adjusted = percentile_ranks / 100 * weight_cdf[-1]
    # A rank of 0 skips leading zero weights, as scikit-learn does (#20528).
    at_zero = adjusted == 0
    adjusted[at_zero] = np.nextafter(adjusted[at_zero], adjusted[at_zero] + 1)
    max_idx = len(sorted_idx) - 1
    indices = np.clip(np.searchsorted(weight_cdf, adjusted), 0, max_idx)
    fraction_above = weight_cdf[indices] - adjusted
    is_fraction_above = fraction_above > np.finfo(values.dtype).eps
    plus_one = np.clip(indices + 1, 0, max_idx)
    zero_next = weights[sorted_idx[plus_one]] == 0
    if zero_next.any():  # the next value weighs nothing: take the next one that weighs
        after = np.searchsorted(weight_cdf, weight_cdf[indices[zero_next]], side="right")
        plus_one[zero_next] = np.where(after > max_idx, indices[zero_next], after)
    low = values[sorted_idx[indices]]
    return np.where(is_fraction_above, low, (low + values[sorted_idx[plus_one]]) / 2)


def find_binning_thresholds(
    col_data: np.ndarray, max_bins: int, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """scikit-learn 1.9's `_find_binning_thresholds`, with the weighted percentiles in one pass."""
    if sample_weight is None:
        return np.asarray(SLOW_ORIGINAL(col_data, max_bins, sample_weight=None))
    missing_mask = np.isnan(col_data)
    if missing_mask.any():
        col_data = col_data[~missing_mask]
        sample_weight = sample_weight[~missing_mask]
    weighs = sample_weight != 0
    col_data = col_data[weighs]
    sample_weight = sample_weight[weighs]
    sort_idx = np.argsort(col_data)
    col_data = col_data[sort_idx]
    sample_weight = sample_weight[sort_idx]
    distinct_values = np.unique(col_data).astype(X_DTYPE)
    if len(distinct_values) == 1:
        return np.asarray([])
    if len(distinct_values) <= max_bins:
        bin_thresholds = sliding_window_view(distinct_values, 2).mean(axis=1)
    else:
        percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
        values = np.asarray(col_data, dtype=np.float64)
        weights = np.asarray(sample_weight, dtype=np.float64)
        bin_thresholds = weighted_percentiles(values, weights, percentiles)
    unique_bin_values = np.unique(bin_thresholds)
    if unique_bin_values.shape[0] != bin_thresholds.shape[0]:
        bin_thresholds = unique_bin_values
    np.clip(bin_thresholds, a_min=None, a_max=ALMOST_INF, out=bin_thresholds)
    return bin_thresholds


def use_fast_weighted_binning() -> bool:
    """Install the one-pass thresholds in this process (idempotent); False on a scikit-learn
    release they were not checked against (it keeps its own)."""
    if sklearn.__version__ not in CHECKED_VERSIONS:
        return False
    patched: Any = binning
    patched._find_binning_thresholds = find_binning_thresholds
    return True
