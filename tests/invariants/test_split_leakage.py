"""The leakage audit of splits by groups and by time, proven on real fits: per fold and for the
test set it counts the groups on both sides and checks that fit rows are earlier."""

from __future__ import annotations

import pandas as pd

from tasks.config import ImputeConfig, build_config
from tasks.data.split import ForwardFolds, folds_for_split, make_folds, split_by_config
from tasks.data.split_columns import resolve_split_columns
from tasks.model_selection.audit import audit_leakage
from tasks.model_selection.pipeline import FAMILIES, build_pipeline
from tasks.steps import profile_data
from tests.unit.data.test_split_groups_time import grouped_frame, time_frame


def fitted_split(frame: pd.DataFrame, **split: object):  # type: ignore[no-untyped-def]
    config = build_config({"data": "x.csv", "target": "label", "split": split}, "test")
    settings = resolve_split_columns(frame, config.split, "label")
    profile = profile_data.fn(frame, config, settings)
    data = split_by_config(frame, profile, settings, 0)
    pipeline = build_pipeline(
        FAMILIES["logistic_regression"],
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(),
        seed=0,
    ).fit(data.X_train, data.y_train)
    return data, pipeline, profile


def test_group_audit_counts_zero_shared_groups_per_fold_and_test() -> None:
    split, model, profile = fitted_split(grouped_frame(), groups="patient_id")
    folds, _ = folds_for_split(split, 3, 0, profile.task)
    audit = audit_leakage(
        model, split.X_train, split.y_train, split.X_test, folds, groups=split.groups
    )
    assert [fold["groups_shared"] for fold in audit["cv_folds"]] == [0, 0, 0]
    assert audit["test_set"]["groups_shared"] == 0
    assert audit["no_leakage_found"]


def test_group_audit_catches_random_folds_that_split_groups() -> None:
    split, model, _ = fitted_split(grouped_frame(), groups="patient_id")
    random_folds, _ = make_folds(split.y_train, 3, seed=0)
    audit = audit_leakage(
        model, split.X_train, split.y_train, split.X_test, random_folds, groups=split.groups
    )
    assert all(fold["groups_shared"] > 0 for fold in audit["cv_folds"])
    assert not audit["no_leakage_found"]


def test_time_audit_records_latest_fit_and_earliest_evaluation() -> None:
    split, model, profile = fitted_split(time_frame(), time="day")
    folds, _ = folds_for_split(split, 3, 0, profile.task)
    audit = audit_leakage(
        model, split.X_train, split.y_train, split.X_test, folds, times=split.times
    )
    for record in [*audit["cv_folds"], audit["test_set"]]:
        assert record["fit_before_evaluation"]
        assert record["latest_fit_time"] < record["earliest_evaluation_time"]
    assert audit["no_leakage_found"]


def test_time_audit_catches_folds_that_train_on_the_future() -> None:
    split, model, _ = fitted_split(time_frame(), time="day")
    backwards = ForwardFolds(-split.times.astype("int64").astype(float), 3)  # reversed time
    audit = audit_leakage(
        model, split.X_train, split.y_train, split.X_test, backwards, times=split.times
    )
    assert not any(record["fit_before_evaluation"] for record in audit["cv_folds"])
    assert not audit["no_leakage_found"]
