"""scikit-learn's SimpleImputer with its median found by `np.nanmedian`.

SimpleImputer(strategy="median") finds each column's median with `np.ma.median`, which sorts
whole masked columns (scikit-learn/scikit-learn#19926, numpy/numpy#18821, both open): 0.20 s
for 80,000 rows of 20 columns on this machine, against 0.02 s for `np.nanmedian`, which
partitions. A run fits the numeric imputer once per fold, again for the winner's refit and for
the audit's fold refits. The medians are the same numbers (tests/unit/model_selection/
test_imputation.py compares them with SimpleImputer's); every other strategy, and any input
that is not floats with NaN for missing, is SimpleImputer's own code."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


class NanMedianImputer(SimpleImputer):
    """SimpleImputer; its dense median by partition instead of a full sort."""

    def _dense_fit(self, X: Any, strategy: Any, missing_values: Any, fill_value: Any) -> Any:
        if strategy != "median" or not is_nan(missing_values) or X.dtype.kind != "f":
            return super()._dense_fit(X, strategy, missing_values, fill_value)
        missing_mask = np.isnan(X)
        self._fit_indicator(missing_mask)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            median = np.nanmedian(X, axis=0)
        median[np.isnan(median)] = 0 if self.keep_empty_features else np.nan  # as SimpleImputer
        return median
