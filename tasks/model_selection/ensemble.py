"""An ensemble candidate: soft voting over the best pipeline of each family (`search.ensemble`).

scikit-learn's VotingClassifier (averaged probabilities) or VotingRegressor (averaged
predictions) over each completed family's best candidate, cross-validated on the very folds the
families were searched on, like any candidate. It joins the results as the family `ensemble`;
select_best prefers the first of equal scores, so it wins only with a strictly better CV score.
Each member is a whole tabpipe pipeline with its audit steps, so the leakage audit checks every
member (tasks/model_selection/audit.py).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.model_selection import BaseCrossValidator, cross_validate

from tasks.model_selection.search import FamilyResult, finite_or_none, short_error

ENSEMBLE = "ensemble"


def build_ensemble(results: list[FamilyResult], task: str) -> VotingClassifier | VotingRegressor:
    """Soft voting over each completed family's best pipeline (unfitted clones)."""
    members = [(r.family, clone(r.estimator)) for r in completed(results)]
    if task == "regression":
        return VotingRegressor(members)
    return VotingClassifier(members, voting="soft")


def completed(results: list[FamilyResult]) -> list[FamilyResult]:
    return [r for r in results if r.status == "completed" and r.estimator is not None]


def search_ensemble(
    results: list[FamilyResult],
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    task: str,
    scoring: Any,
    folds: BaseCrossValidator,
    n_jobs: int = 1,
) -> FamilyResult | None:
    """Cross-validate the ensemble of the families' best pipelines on the search's folds, and
    refit it on all training rows; None when fewer than two families completed."""
    members = completed(results)
    if len(members) < 2:
        return None
    started = time.perf_counter()
    ensemble = build_ensemble(results, task)
    params = {"members": "+".join(r.family for r in members), "voting": "soft"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            scores = cross_validate(
                ensemble, X_train, y_train, cv=folds, scoring=scoring, n_jobs=n_jobs
            )
            fitted = clone(ensemble).fit(X_train, y_train)
    except Exception as error:  # an ensemble that cannot be fitted leaves the families as they are
        return FamilyResult(
            ENSEMBLE, "failed", error=short_error(error), fit_seconds=time.perf_counter() - started
        )
    mean = finite_or_none(np.mean(scores["test_score"]))
    std = finite_or_none(np.std(scores["test_score"]))
    candidate = {
        "family": ENSEMBLE,
        "params": params,
        "mean_score": mean,
        "std_score": std,
        "mean_fit_seconds": float(np.mean(scores["fit_time"])),
    }
    return FamilyResult(
        family=ENSEMBLE,
        status="completed" if mean is not None else "failed",
        best_params=params,
        best_score=mean,
        best_std=std,
        fit_seconds=time.perf_counter() - started,
        candidates=[candidate],
        error=None if mean is not None else "every fold failed to score",
        estimator=fitted if mean is not None else None,
    )


def ensemble_members(model: Any) -> list[tuple[str, Any]]:
    """The fitted member pipelines of an ensemble model; empty for a single pipeline."""
    if isinstance(model, VotingClassifier | VotingRegressor) and hasattr(model, "estimators_"):
        names = [name for name, _ in model.estimators]
        return list(zip(names, model.estimators_, strict=True))
    return []
