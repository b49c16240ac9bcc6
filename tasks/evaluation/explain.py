"""Calibration of the best model's probabilities and permutation importance of raw columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

# Permutation importance re-predicts the data n_repeats times per column: cap the rows it uses.
MAX_IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 3


def brier_score(y_true: pd.Series, probabilities: pd.DataFrame, classes: list[str]) -> float:
    """Mean over rows of the squared distance between the probability vector and the one-hot truth
    (for two classes this is twice sklearn's binary Brier score, so we report the binary one)."""
    truth = np.equal.outer(y_true.to_numpy(), np.asarray(classes)).astype(float)
    squared = ((probabilities[classes].to_numpy() - truth) ** 2).sum(axis=1)
    score = float(squared.mean())
    return score / 2 if len(classes) == 2 else score


def importance_table(
    model: Any, X: pd.DataFrame, y: pd.Series, scoring: Any, seed: int, n_jobs: int = 1
) -> pd.DataFrame:
    """Drop in the selection score when each raw input column is shuffled (mean ± std); the
    columns are spread over n_jobs worker processes (the search's pool, already started)."""
    if len(X) > MAX_IMPORTANCE_ROWS:
        X = X.sample(MAX_IMPORTANCE_ROWS, random_state=seed)
        y = y.loc[X.index]
    # Small predictions run faster single-threaded than with OpenMP threads fighting for 2 cores.
    with threadpool_limits(limits=1):
        result = permutation_importance(
            model,
            X,
            y,
            scoring=scoring,
            n_repeats=IMPORTANCE_REPEATS,
            random_state=seed,
            n_jobs=n_jobs,
        )
    table = pd.DataFrame(
        {
            "column": X.columns,
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    return table.sort_values("importance_mean", ascending=False, kind="stable").reset_index(
        drop=True
    )


@dataclass(frozen=True)
class Explanations:
    """What metrics.json says of calibration and importance, and the table the plot shows."""

    summary: dict[str, Any]
    importance: pd.DataFrame


def explain(
    model: Any,
    *,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
    scoring: Any,
    seed: int,
    n_jobs: int = 1,
) -> Explanations:
    """Brier score (classification) and the permutation importance of the raw columns."""
    table = importance_table(model, X_test, y_test, scoring, seed, n_jobs)
    importance = table.to_dict(orient="records")
    if not classes:  # regression: no probabilities to calibrate
        return Explanations({"permutation_importance": importance}, table)
    summary = {
        "brier_score": brier_score(y_test.astype(str), probabilities, classes),
        "brier_note": "binary: mean squared error of the positive-class probability"
        if positive_label is not None
        else "multiclass: mean over rows of the summed squared error over classes",
        "permutation_importance": importance,
    }
    return Explanations(summary, table)
