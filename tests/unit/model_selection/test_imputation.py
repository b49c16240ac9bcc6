"""NanMedianImputer is SimpleImputer with a faster median: the same statistics, the same output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer

from tasks.model_selection.imputation import NanMedianImputer


def gappy(n_rows: int, seed: int) -> pd.DataFrame:
    """Floats over several scales with a third of them missing, an even and an odd column
    length, ties, and one column with nothing in it."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_rows, 5)) * 10.0 ** rng.integers(-4, 5, size=5)
    values[:, 3] = rng.integers(0, 3, size=n_rows)  # ties at the median
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 4] = np.nan
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(5)])


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
@pytest.mark.parametrize("keep_empty_features", [False, True])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_the_medians_and_the_output_are_simple_imputers(
    keep_empty_features: bool, add_indicator: bool
) -> None:
    for seed, n_rows in enumerate([2, 3, 50, 51, 4_000]):
        X = gappy(n_rows, seed)
        settings = {"keep_empty_features": keep_empty_features, "add_indicator": add_indicator}
        ours = NanMedianImputer(strategy="median", **settings).fit(X)
        theirs = SimpleImputer(strategy="median", **settings).fit(X)
        np.testing.assert_array_equal(ours.statistics_, theirs.statistics_)
        np.testing.assert_array_equal(ours.transform(X), theirs.transform(X))
        assert list(ours.get_feature_names_out()) == list(theirs.get_feature_names_out())


@pytest.mark.parametrize("strategy", ["mean", "most_frequent", "constant"])
def test_other_strategies_are_simple_imputers_own(strategy: str) -> None:
    X = gappy(300, seed=7).iloc[:, :4]
    ours = NanMedianImputer(strategy=strategy, fill_value=-1.0).fit(X)
    theirs = SimpleImputer(strategy=strategy, fill_value=-1.0).fit(X)
    np.testing.assert_array_equal(ours.statistics_, theirs.statistics_)


def test_a_missing_value_other_than_nan_is_simple_imputers_own() -> None:
    X = np.array([[1.0, -1.0], [-1.0, 4.0], [3.0, 6.0], [5.0, -1.0]])
    ours = NanMedianImputer(strategy="median", missing_values=-1.0).fit(X)
    assert ours.statistics_.tolist() == [3.0, 5.0]
