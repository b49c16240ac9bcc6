"""Preparing each fold once gives what GridSearchCV gives (the same CV scores, the same refit
model), fits each distinct preparation once per fold, and shares it across families."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.model_selection import KFold

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import split_frame
from tasks.model_selection.pipeline import (
    FAMILIES,
    REGRESSION_FAMILIES,
    build_param_grid,
    build_pipeline,
)
from tasks.model_selection.prepared import FoldPreparations, preparation_length
from tasks.model_selection.search import FamilyResult, search_family
from tests.conftest import make_frame
from tests.unit.model_selection.tiny_search import search_on, tiny_split

GRIDS = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "hist_gradient_boosting": {"max_leaf_nodes": [7, 15], "max_iter": [20]},
    "decision_tree": {"max_depth": [2, None]},
}


def binary_search(
    family: str,
    rebalancing: list[str],
    *,
    reuse: bool,
    store: FoldPreparations | None = None,
    strategy: str = "grid",
) -> tuple[FamilyResult, Any]:
    split, profile = tiny_split(300, positive_share=0.2, seed=11)
    result = search_on(
        split,
        profile,
        family,
        GRIDS[family],
        rebalancing,
        strategy=strategy,
        n_iter=3,
        preparations=store,
        reuse_preparation=reuse,
    )
    return result, split


def scores(result: FamilyResult) -> list[tuple[str, float | None, float | None]]:
    return [(str(r["params"]), r["mean_score"], r["std_score"]) for r in result.candidates]


@pytest.mark.parametrize(
    ("family", "rebalancing"),
    [
        ("logistic_regression", ["class_weight"]),
        ("logistic_regression", ["smote", "class_weight"]),
        ("decision_tree", ["random_under", "none"]),
        ("hist_gradient_boosting", ["class_weight", "random_under"]),
    ],
)
def test_reusing_fold_preparations_gives_the_same_scores_and_predictions(
    family: str, rebalancing: list[str]
) -> None:
    reused, split = binary_search(family, rebalancing, reuse=True)
    refitted, _ = binary_search(family, rebalancing, reuse=False)

    assert reused.status == refitted.status == "completed"
    assert scores(reused) == scores(refitted)  # exactly: the same rows, the same arithmetic
    assert reused.best_params == refitted.best_params
    assert reused.preparations and not refitted.preparations
    np.testing.assert_array_equal(
        reused.estimator.predict_proba(split.X_test), refitted.estimator.predict_proba(split.X_test)
    )


def test_random_search_tries_the_candidates_randomized_search_would() -> None:
    reused, _ = binary_search(
        "logistic_regression", ["class_weight", "random_under"], reuse=True, strategy="random"
    )
    refitted, _ = binary_search(
        "logistic_regression", ["class_weight", "random_under"], reuse=False, strategy="random"
    )

    assert len(reused.candidates) == 3
    assert scores(reused) == scores(refitted)


def test_regression_reuses_preparations_with_the_same_scores() -> None:
    rng = np.random.default_rng(3)
    frame = make_frame(200, seed=3).drop(columns="label")
    frame["price"] = 3 * frame["x1"].fillna(0) + rng.normal(size=len(frame))
    profile = profile_frame(frame, "price")
    split = split_frame(frame, profile, 0.25, seed=0)
    spec = REGRESSION_FAMILIES["ridge"]
    grid = build_param_grid(spec, {"alpha": [0.1, 10.0]}, [], profile.categorical_columns, 0)
    pipeline = build_pipeline(
        spec, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
    )
    arguments = (
        "ridge",
        pipeline,
        grid,
        split.X_train,
        split.y_train,
        "neg_root_mean_squared_error",
        KFold(3, shuffle=True, random_state=0),
    )
    reused = search_family(*arguments, reuse_preparation=True)
    refitted = search_family(*arguments, reuse_preparation=False)

    assert scores(reused) == scores(refitted)
    np.testing.assert_array_equal(
        reused.estimator.predict(split.X_test), refitted.estimator.predict(split.X_test)
    )


def test_each_distinct_preparation_is_fitted_once_per_fold_and_shared_by_families() -> None:
    store = FoldPreparations()
    rebalancing = ["class_weight", "random_under"]
    first, _ = binary_search("logistic_regression", rebalancing, reuse=True, store=store)
    second, _ = binary_search("decision_tree", rebalancing, reuse=True, store=store)

    # two distinct preparations (prepare + impute + encode for class weights; prepare + impute
    # before the sampler), each fitted once on each of the 3 folds, whatever the families and
    # candidates
    assert len(store.records) == 2 * 3
    assert {r.key for r in first.preparations} == {r.key for r in second.preparations}
    for record in store.records.values():
        # 2 families x 2 candidates share each fitted preparation
        assert record.candidates == 4
        assert record.row_index is not None and record.rows == len(record.row_index)
    steps = sorted(tuple(r.steps) for r in store.records.values() if r.fold == 0)
    assert steps == [
        ("audit_input", "prepare", "impute"),
        ("audit_input", "prepare", "impute", "rebalance", "audit_resampled", "encode"),
    ]


def test_the_preparation_stops_at_a_sampler_and_at_a_step_the_grid_changes() -> None:
    spec = FAMILIES["logistic_regression"]
    pipeline = build_pipeline(spec, ["x1"], ["colour"], ImputeConfig(), 0)
    sampler = build_param_grid(spec, {}, ["random_under"], ["colour"], 0)[0]["rebalance"][0]

    # audit_input, prepare (learns nothing), impute, rebalance, audit_resampled, encode, model
    assert preparation_length(pipeline, {"model__C": 1.0, "rebalance": "passthrough"}) == 6
    assert preparation_length(pipeline, {"model__C": 1.0, "rebalance": sampler}) == 3
    assert preparation_length(pipeline, {"encode__numeric__with_mean": False}) == 5
    assert preparation_length(pipeline, {"impute__numeric__strategy": "mean"}) == 2


def test_a_store_too_small_for_every_fold_refits_evicted_folds_with_the_same_scores() -> None:
    unbounded, _ = binary_search("logistic_regression", ["class_weight"], reuse=True)
    store = FoldPreparations(max_bytes=1)  # room for one prepared fold at a time
    bounded, _ = binary_search("logistic_regression", ["class_weight"], reuse=True, store=store)
    again, _ = binary_search("logistic_regression", ["class_weight"], reuse=True, store=store)

    assert scores(bounded) == scores(unbounded) == scores(again)
    assert len(store._folds) == 1
    # fold by fold, each fold evicts the one before: the second search fits every fold again
    assert [r.fits for r in store.records.values()] == [2, 2, 2]
    assert all(r.candidates == 4 for r in store.records.values())


def test_folds_prepared_one_at_a_time_in_worker_processes_give_the_same_scores() -> None:
    in_threads, _ = binary_search("logistic_regression", ["class_weight"], reuse=True)
    store = FoldPreparations(n_jobs=2, max_bytes=1)  # fold by fold, each fitted in the pool
    in_pool, _ = binary_search("logistic_regression", ["class_weight"], reuse=True, store=store)

    assert scores(in_pool) == scores(in_threads)
    assert [r.fits for r in store.records.values()] == [1, 1, 1]
    assert all(r.rows > 0 and r.row_index is not None for r in store.records.values())


def recorded_fold_requests(
    store: FoldPreparations, monkeypatch: pytest.MonkeyPatch
) -> list[list[int]]:
    """The folds of each `prepared_folds` call the search makes of `store`."""
    asked: list[list[int]] = []
    original = store.prepared_folds

    def recording(preparation: Any, X: Any, y: Any, splits: Any, folds: list[int]) -> Any:
        asked.append(list(folds))
        return original(preparation, X, y, splits, folds)

    monkeypatch.setattr(store, "prepared_folds", recording)
    return asked


@pytest.mark.parametrize(
    ("expected_fold_bytes", "requests"),
    [
        (None, [[0], [0, 1, 2]]),  # no estimate: fold 0 first, its size decides
        (1, [[0, 1, 2]]),  # the estimate fits: every fold in one dispatch
        (10**9, [[0], [0, 1, 2]]),  # the estimate is over the store: fold 0 first, measured
    ],
)
def test_folds_the_encoding_estimate_says_fit_are_prepared_at_once_with_the_same_scores(
    expected_fold_bytes: int | None,
    requests: list[list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_store, _ = binary_search("logistic_regression", ["class_weight"], reuse=True)
    store = FoldPreparations(n_jobs=1, max_bytes=10**8, expected_fold_bytes=expected_fold_bytes)
    asked = recorded_fold_requests(store, monkeypatch)
    searched, _ = binary_search("logistic_regression", ["class_weight"], reuse=True, store=store)

    assert asked == requests
    assert scores(searched) == scores(one_store)
    assert [r.fits for r in store.records.values()] == [1, 1, 1]
