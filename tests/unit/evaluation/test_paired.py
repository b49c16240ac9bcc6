"""Regression metrics on bootstrap resamples equal scikit-learn's on the resampled rows (the
classification ones are checked in tests/unit/serving/test_champion.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    root_mean_squared_error,
)

from tasks.evaluation.paired import metric_on_resamples, paired_difference, weighted_error_scores

SKLEARN = {
    "neg_root_mean_squared_error": lambda t, p: -root_mean_squared_error(t, p),
    "neg_mean_squared_error": lambda t, p: -mean_squared_error(t, p),
    "neg_mean_absolute_error": lambda t, p: -mean_absolute_error(t, p),
    "r2": r2_score,
}


def test_error_scores_equal_sklearn_on_the_resampled_rows() -> None:
    rng = np.random.default_rng(5)
    y_true = 1e6 + rng.normal(size=50) * 10  # a large level: the variance must not cancel
    y_pred = y_true + rng.normal(size=50) * 3
    weights = rng.multinomial(50, np.full(50, 1 / 50), size=4).astype(np.float32)
    scores = weighted_error_scores(y_true, y_pred, weights)
    for b in range(4):
        t, p = np.repeat(y_true, weights[b].astype(int)), np.repeat(y_pred, weights[b].astype(int))
        for name, metric in SKLEARN.items():
            assert scores[name][b] == pytest.approx(metric(t, p), rel=1e-6), name


def test_a_better_regressor_beats_the_mean_beyond_noise() -> None:
    rng = np.random.default_rng(6)
    y_true = pd.Series(rng.normal(size=300))
    good = pd.Series(y_true + rng.normal(size=300) * 0.3)
    mean = pd.Series(np.full(300, y_true.mean()))
    score_good, score_mean = (
        metric_on_resamples(
            "neg_root_mean_squared_error", y_true, p, classes=[], positive_label=None
        )
        for p in (good, mean)
    )
    paired = paired_difference(score_good, score_mean, 300, n_boot=200, seed=0, confidence=0.95)
    assert paired["a"] == pytest.approx(-root_mean_squared_error(y_true, good))
    assert paired["ci_low"] > 0 and paired["n_valid_resamples"] == 200
    same = paired_difference(score_good, score_good, 300, n_boot=50, seed=0, confidence=0.95)
    assert same["ci_low"] == same["ci_high"] == 0.0
