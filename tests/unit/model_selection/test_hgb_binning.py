"""The one-pass weighted binning gives scikit-learn's thresholds bit for bit, and a
class-weighted histogram gradient boosting fits the same model with it."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting import binning

from tasks.model_selection.hgb_binning import (
    CHECKED_VERSIONS,
    SLOW_ORIGINAL,
    find_binning_thresholds,
    use_fast_weighted_binning,
)

MAX_BINS = 255


def column_cases(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Columns and weights as binning meets them: continuous, tied, with NaNs, zero weights,
    class weights (a few distinct values), few distinct values, and a single value."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 3000))
    continuous = rng.normal(size=n)
    tied = np.round(rng.gamma(2.0, 3.0, size=n), 1)
    with_nans = continuous.copy()
    with_nans[rng.random(n) < 0.2] = np.nan
    few_values = rng.integers(0, 12, size=n).astype(float)
    class_weights = rng.choice([0.6, 3.7, 11.0], size=n)
    float_weights = rng.gamma(1.0, 1.0, size=n)
    zero_weights = float_weights * (rng.random(n) > 0.3)
    integers = rng.integers(0, 10_000, size=n).astype(float)
    return [
        (continuous, class_weights),
        (continuous, float_weights),
        (tied, class_weights),
        (tied, zero_weights),
        (with_nans, float_weights),
        (with_nans, zero_weights),
        (few_values, class_weights),
        (integers, np.ones(n)),
        (integers, zero_weights),
        (np.full(n, 2.5), class_weights),
    ]


@pytest.mark.parametrize("seed", range(12))
def test_thresholds_equal_scikit_learns_bit_for_bit(seed: int) -> None:
    for values, weights in column_cases(seed):
        expected = SLOW_ORIGINAL(values, MAX_BINS, sample_weight=weights)
        got = find_binning_thresholds(values, MAX_BINS, sample_weight=weights)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        unweighted = find_binning_thresholds(values, MAX_BINS, sample_weight=None)
        np.testing.assert_array_equal(unweighted, SLOW_ORIGINAL(values, MAX_BINS))


def test_few_bins_and_tiny_columns_give_the_same_thresholds() -> None:
    rng = np.random.default_rng(7)
    for max_bins in (2, 3, 16, 64):
        for n in (3, 5, 40, 700):
            values = rng.normal(size=n)
            weights = rng.choice([0.0, 1.0, 2.5], size=n)
            weights[0] = 1.0  # not all zero
            expected = SLOW_ORIGINAL(values, max_bins, sample_weight=weights)
            got = find_binning_thresholds(values, max_bins, sample_weight=weights)
            np.testing.assert_array_equal(got, expected)


@pytest.mark.skipif(
    sklearn.__version__ not in CHECKED_VERSIONS, reason="only installed on checked releases"
)
def test_class_weighted_boosting_fits_the_same_model_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.where(X[:, 0] + rng.normal(scale=0.8, size=1500) > 1.2, "yes", "no")
    amounts = np.nan_to_num(X[:, 1]) * 2 + rng.normal(size=1500)
    weights = rng.gamma(1.0, 1.0, size=1500)

    def predictions() -> tuple[np.ndarray, np.ndarray]:
        classifier = HistGradientBoostingClassifier(class_weight="balanced", random_state=0)
        regressor = HistGradientBoostingRegressor(random_state=0)
        regressor.fit(X, amounts, sample_weight=weights)
        return classifier.fit(X, y).predict_proba(X), regressor.predict(X)

    monkeypatch.setattr(binning, "_find_binning_thresholds", SLOW_ORIGINAL)
    slow = predictions()
    assert use_fast_weighted_binning()
    assert binning._find_binning_thresholds is find_binning_thresholds
    fast = predictions()
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def test_an_unchecked_release_keeps_its_own_binning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binning, "_find_binning_thresholds", SLOW_ORIGINAL)
    monkeypatch.setattr(sklearn, "__version__", "1.10.0")
    assert use_fast_weighted_binning() is False
    assert binning._find_binning_thresholds is SLOW_ORIGINAL
