"""The flow refits only the winning family, and the same model comes out as when every family's
search refits its own best (GridSearchCV's way)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from tasks.errors import AllFamiliesFailed
from tasks.model_selection.search import FamilyResult, refit_best
from tests.unit.model_selection.tiny_search import search_on, tiny_split

GRIDS = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "decision_tree": {"max_depth": [2, 4]},
}


def searched(split, profile, *, refit: bool) -> list[FamilyResult]:  # type: ignore[no-untyped-def]
    return [
        search_on(split, profile, family, grid, ["class_weight"], refit=refit)
        for family, grid in GRIDS.items()
    ]


def test_only_the_winner_is_refitted_and_it_predicts_as_a_search_refit_would() -> None:
    split, profile = tiny_split(240, positive_share=0.25, seed=5)
    deferred = searched(split, profile, refit=False)
    eager = searched(split, profile, refit=True)
    assert not any(result.fitted for result in deferred)

    best = refit_best(deferred, split.X_train, split.y_train)
    loser = next(result for result in deferred if result is not best)
    same_family = next(result for result in eager if result.family == best.family)

    assert best.fitted and best.status == "completed"
    check_is_fitted(best.estimator)
    with pytest.raises(NotFittedError):
        check_is_fitted(loser.estimator)
    np.testing.assert_array_equal(
        best.estimator.predict_proba(split.X_test),  # type: ignore[union-attr]
        same_family.estimator.predict_proba(split.X_test),  # type: ignore[union-attr]
    )


def test_a_winner_whose_refit_fails_is_marked_failed_and_the_next_best_is_refitted() -> None:
    split, profile = tiny_split(240, positive_share=0.25, seed=5)
    results = searched(split, profile, refit=False)
    broken = FamilyResult(
        "broken",
        "completed",
        best_score=2.0,  # above any real score: the winner, until its refit fails
        estimator=LogisticRegression(solver="no-such-solver"),  # type: ignore[arg-type]
        fitted=False,
    )

    best = refit_best([broken, *results], split.X_train, split.y_train)

    assert broken.status == "failed" and "solver" in (broken.error or "")
    assert best.family in GRIDS and best.fitted


def test_when_every_refit_fails_the_run_says_why() -> None:
    split, _ = tiny_split(120, positive_share=0.25, seed=5)
    broken = FamilyResult(
        "broken",
        "completed",
        best_score=0.5,
        estimator=LogisticRegression(solver="no-such-solver"),  # type: ignore[arg-type]
        fitted=False,
    )
    with pytest.raises(AllFamiliesFailed, match="broken"):
        refit_best([broken], split.X_train, split.y_train)
