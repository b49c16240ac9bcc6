"""Leakage invariants, proven on real fits: nothing learns from validation folds or test rows."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import DataSplit, make_folds, split_frame
from tasks.model_selection.audit import (
    INPUT_AUDIT,
    TrainFold,
    audit_leakage,
    row_hashes,
    rows_fingerprint,
    start_fold_refits,
)
from tasks.model_selection.pipeline import FAMILIES, build_param_grid, build_pipeline
from tasks.model_selection.search import build_scorer, search_family
from tests.conftest import make_frame

SENTINEL = 1e9


def sentinel_split(rebalancing: str) -> tuple[DataSplit, object, object]:
    """A split whose test rows alone hold a huge sentinel in x1, searched with mean imputation."""
    frame = make_frame(160, positive_share=0.2, seed=1)
    profile = profile_frame(frame, "label")
    test_rows = split_frame(frame, profile, 0.25, seed=0).X_test.index
    frame.loc[test_rows, "x1"] = SENTINEL
    split = split_frame(frame, profile, 0.25, seed=0)
    assert split.X_test.index.equals(test_rows)  # same seed, same split
    folds, _ = make_folds(split.y_train, 3, seed=0)
    family = FAMILIES["logistic_regression"]
    pipeline = build_pipeline(
        family,
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(numeric="mean"),
        seed=0,
    )
    grid = build_param_grid(family, {"C": [1.0]}, [rebalancing], profile.categorical_columns, 0)
    scorer = build_scorer("average_precision", "yes")
    result = search_family(
        "logistic_regression", pipeline, grid, split.X_train, split.y_train, scorer, folds
    )
    return split, result, (folds, scorer)


@pytest.mark.parametrize("rebalancing", ["random_over", "smote", "random_under"])
def test_a_test_only_sentinel_never_reaches_the_imputer(rebalancing: str) -> None:
    split, result, (folds, _scorer) = sentinel_split(rebalancing)
    imputer_means = result.estimator.named_steps["impute"].named_transformers_["numeric"]
    assert imputer_means.statistics_[0] < 10  # one sentinel among the rows would make it huge
    audit = audit_leakage(result.estimator, split.X_train, split.y_train, split.X_test, folds)
    assert audit["no_leakage_found"]
    assert audit["final_refit"]["test_rows_in_fit"] == 0


def test_every_fold_fits_exactly_its_training_rows_and_keeps_validation_untouched() -> None:
    split, result, (folds, _scorer) = sentinel_split("random_over")
    audit = audit_leakage(result.estimator, split.X_train, split.y_train, split.X_test, folds)
    original_share = (split.y_train == "yes").mean()
    validation_total = {"no": 0, "yes": 0}
    for fold in audit["cv_folds"]:
        assert fold["fit_rows_equal_train_fold"]
        assert fold["validation_rows_in_fit"] == 0
        assert fold["fitted_steps"]["imputer"]["fingerprint"] == fold["train_fold"]["fingerprint"]
        # resampling acted on the training fold only: balanced there, original ratio in validation
        after = fold["class_counts_after_resampling"]
        assert after["yes"] == after["no"]
        validation = fold["validation_class_counts"]
        assert validation["yes"] / sum(validation.values()) == pytest.approx(
            original_share, abs=0.05
        )
        for label, count in validation.items():
            validation_total[label] += count
    assert validation_total == split.y_train.value_counts().to_dict()


def test_a_folds_fingerprint_from_the_tables_row_hashes_is_its_own_rows_fingerprint() -> None:
    """The audit hashes the training table once for all folds; what a fitted step records is
    its own rows' fingerprint: the two agree for every kind of column."""
    rng = np.random.default_rng(3)
    n = 300
    table = pd.DataFrame(
        {
            "number": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "text": pd.Series(rng.choice(["a", "b", "ç", "long text"], n), dtype="str"),
            "objects": pd.Series(rng.choice(["x", None, "y"], n), dtype=object),
            "category": pd.Categorical(rng.choice(["low", "high"], n)),
            "flag": rng.random(n) < 0.5,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 999, n), "D"),
        },
        index=rng.permutation(np.arange(1000, 1000 + n)),
    )
    train = np.sort(rng.choice(n, 200, replace=False))
    fold = TrainFold.of(table, row_hashes(table), train)
    assert fold.fingerprint == rows_fingerprint(table.iloc[train])
    assert fold.equals(table.index[train].to_numpy()[::-1])
    assert fold.fingerprint != rows_fingerprint(table.iloc[train[1:]])


def test_the_audit_detects_leakage_when_test_rows_were_fitted() -> None:
    """The check is computed: hand it a model fitted on test rows and it says so."""
    split, result, (folds, _scorer) = sentinel_split("random_over")
    leaky_model = result.estimator
    leaky_model.fit(
        pd.concat([split.X_train, split.X_test]), pd.concat([split.y_train, split.y_test])
    )
    audit = audit_leakage(leaky_model, split.X_train, split.y_train, split.X_test, folds)
    assert audit["final_refit"]["test_rows_in_fit"] == len(split.X_test)
    assert not audit["no_leakage_found"]


def test_fold_models_never_saw_the_sentinel_either() -> None:
    split, result, (folds, _) = sentinel_split("smote")
    from sklearn.model_selection import cross_validate

    refits = cross_validate(
        result.estimator, split.X_train, split.y_train, cv=folds, return_estimator=True
    )
    for model in refits["estimator"]:
        statistics = model.named_steps["impute"].named_transformers_["numeric"].statistics_
        assert np.all(statistics < 10)
        assert not np.isin(model.named_steps[INPUT_AUDIT].row_index_, split.X_test.index).any()


def shared_preparation_search(rebalancing: list[str]) -> tuple[DataSplit, object, object, object]:
    """The sentinel split searched with fold preparations fitted once and shared (the default)."""
    from tasks.model_selection.prepared import FoldPreparations

    frame = make_frame(160, positive_share=0.2, seed=1)
    profile = profile_frame(frame, "label")
    test_rows = split_frame(frame, profile, 0.25, seed=0).X_test.index
    frame.loc[test_rows, "x1"] = SENTINEL
    split = split_frame(frame, profile, 0.25, seed=0)
    folds, _ = make_folds(split.y_train, 3, seed=0)
    family = FAMILIES["logistic_regression"]
    pipeline = build_pipeline(
        family,
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(numeric="mean"),
        seed=0,
    )
    grid = build_param_grid(family, {"C": [0.1, 1.0]}, rebalancing, profile.categorical_columns, 0)
    store = FoldPreparations()
    result = search_family(
        "logistic_regression",
        pipeline,
        grid,
        split.X_train,
        split.y_train,
        build_scorer("average_precision", "yes"),
        folds,
        preparations=store,
    )
    return split, result, folds, store


def test_every_shared_fold_preparation_saw_exactly_its_training_fold() -> None:
    split, result, folds, store = shared_preparation_search(["class_weight", "random_under"])

    audit = audit_leakage(
        result.estimator,
        split.X_train,
        split.y_train,
        split.X_test,
        folds,
        shared_preparations=result.preparations,
    )

    shared = audit["shared_preparations"]
    assert len(shared) == 2 * 3  # two distinct preparations x three folds, each fitted once
    for record in shared:
        assert record["fit_rows_equal_train_fold"]
        assert record["fingerprint"] == record["train_fold"]["fingerprint"]
        assert record["validation_rows_in_fit"] == 0
        assert record["test_rows_in_fit"] == 0
        assert record["candidates_reusing"] == 2  # both C values reused it
    assert audit["no_leakage_found"]
    for prepared in store._folds.values():  # the fitted preparations themselves
        means = prepared.preparation.named_steps["impute"].named_transformers_["numeric"]
        assert means.statistics_[0] < 10  # the test-only sentinel never reached a fold's imputer


def test_the_audit_detects_a_shared_preparation_fitted_on_validation_rows() -> None:
    """Computed, not assumed: a record whose fit saw the whole training set is caught."""
    split, result, folds, _ = shared_preparation_search(["class_weight"])
    leaky = result.preparations[0]
    leaky.row_index = split.X_train.index.to_numpy()

    audit = audit_leakage(
        result.estimator,
        split.X_train,
        split.y_train,
        split.X_test,
        folds,
        shared_preparations=result.preparations,
    )

    flagged = [r for r in audit["shared_preparations"] if r["fold"] == leaky.fold]
    assert flagged[0]["validation_rows_in_fit"] > 0
    assert not flagged[0]["fit_rows_equal_train_fold"]
    assert not audit["no_leakage_found"]


def test_target_statistics_and_calendar_features_learn_from_training_folds_only() -> None:
    """A many-level category (target-encoded) and a timestamp (calendar features) in the
    pipeline: a category that only test rows hold never reaches the encoder, and the audit
    still finds every fit on exactly its training fold."""
    from tasks.config import EncodingConfig
    from tasks.model_selection.encoding import layout_for, plan_encoding

    frame = make_frame(240, positive_share=0.3, seed=2)
    rng = np.random.default_rng(2)
    frame["shop"] = [f"shop-{i}" for i in rng.integers(0, 60, len(frame))]
    frame["when"] = pd.date_range("2024-01-01", periods=len(frame), freq="7h").strftime(
        "%Y-%m-%d %H:%M"
    )
    profile = profile_frame(frame, "label")
    assert profile.column_roles["shop"].encoding == "target"
    assert profile.column_roles["when"].role == "datetime"
    test_rows = split_frame(frame, profile, 0.25, seed=0).X_test.index
    frame.loc[test_rows, "shop"] = "test-only-shop"
    split = split_frame(frame, profile, 0.25, seed=0)
    folds, _ = make_folds(split.y_train, 3, seed=0)
    plan = plan_encoding(profile, split.X_train, EncodingConfig(), cv_folds=3)
    family = FAMILIES["logistic_regression"]
    pipeline = build_pipeline(
        family,
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(),
        seed=0,
        layout=layout_for(profile, split.X_train, plan, EncodingConfig(), seed=0),
    )
    grid = build_param_grid(family, {"C": [1.0]}, ["none"], profile.categorical_columns, 0)
    result = search_family(
        "logistic_regression",
        pipeline,
        grid,
        split.X_train,
        split.y_train,
        build_scorer("average_precision", "yes"),
        folds,
    )
    encoder = result.estimator.named_steps["encode"].named_transformers_["target"][0]
    assert "test-only-shop" not in set(encoder.categories_[0])
    audit = audit_leakage(result.estimator, split.X_train, split.y_train, split.X_test, folds)
    assert audit["no_leakage_found"]
    for fold in audit["cv_folds"]:
        assert fold["fit_rows_equal_train_fold"] and fold["validation_rows_in_fit"] == 0


def test_the_audit_refits_its_folds_in_worker_processes_with_the_same_records() -> None:
    split, result, (folds, _scorer) = sentinel_split("random_under")
    in_process = audit_leakage(result.estimator, split.X_train, split.y_train, split.X_test, folds)
    in_pool = audit_leakage(
        result.estimator, split.X_train, split.y_train, split.X_test, folds, n_jobs=2
    )
    assert in_pool["no_leakage_found"]
    assert in_pool["cv_folds"] == in_process["cv_folds"]  # rows, fingerprints, class counts


def test_fold_refits_made_before_the_final_fit_give_the_same_audit() -> None:
    """The flow re-fits the folds from the winner's unfitted pipeline, one after another in one
    job in the pool, while it refits the winner itself (flows/train.py: start_audit_refits)."""
    split, result, (folds, _scorer) = sentinel_split("random_under")
    early = start_fold_refits(
        clone(result.estimator), split.X_train, split.y_train, folds, n_jobs=2
    ).result()
    audit = audit_leakage(
        result.estimator, split.X_train, split.y_train, split.X_test, folds, fold_refits=early
    )
    assert audit["no_leakage_found"]
    assert audit == audit_leakage(
        result.estimator, split.X_train, split.y_train, split.X_test, folds
    )
