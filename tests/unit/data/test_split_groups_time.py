"""Splits that respect groups and time: planted tables where a random split is wrong."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from tasks.config import RunConfig, SplitConfig, build_config
from tasks.data.profile import profile_frame
from tasks.data.roles import infer_role
from tasks.data.split import (
    RememberedFolds,
    fast_labels,
    folds_for_split,
    make_folds,
    split_by_config,
)
from tasks.data.split_columns import (
    likely_group_column,
    likely_time_column,
    resolve_split_columns,
    whole_numbers_or_labels,
)
from tasks.errors import ConfigError, DataError
from tasks.steps import profile_data


def grouped_frame(n_groups: int = 60, per_group: int = 8, seed: int = 0) -> pd.DataFrame:
    """Each patient's rows sit close together and share one label, drawn at random per patient:
    features say who the patient is, never the label of an unseen patient."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n_groups), per_group)
    centre = rng.normal(size=(n_groups, 3)) * 4
    features = centre[patient] + rng.normal(size=(len(patient), 3)) * 0.2
    label = rng.integers(0, 2, n_groups)[patient]
    frame = pd.DataFrame(features, columns=["a", "b", "c"])
    frame["patient_id"] = [f"p{i:03d}" for i in patient]
    frame["label"] = np.where(label == 1, "yes", "no")
    return frame


def time_frame(n_rows: int = 200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=n_rows, freq="D")
    frame = pd.DataFrame(
        {
            "day": days.strftime("%Y-%m-%d"),
            "x": rng.normal(size=n_rows),
            "label": rng.choice(["no", "yes"], n_rows),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows out of order


def config_for(frame_target: str = "label", **split: object) -> RunConfig:
    return build_config({"data": "x.csv", "target": frame_target, "split": split}, "test")


def grouped_split(frame: pd.DataFrame, config: RunConfig):  # type: ignore[no-untyped-def]
    settings = resolve_split_columns(frame, config.split, config.target)
    profile = profile_data.fn(frame, config, settings)
    return settings, profile, split_by_config(frame, profile, settings, config.seed)


def test_random_cv_scores_far_above_chance_and_group_cv_at_chance() -> None:
    frame = grouped_frame()
    config = config_for(groups="patient_id")
    _, profile, split = grouped_split(frame, config)
    model = KNeighborsClassifier(n_neighbors=3)
    X = split.X_train[["a", "b", "c"]]
    random_folds, _ = make_folds(split.y_train, 5, seed=0)
    group_folds, _ = folds_for_split(split, 5, seed=0, task=profile.task)
    random_score = cross_val_score(model, X, split.y_train, cv=random_folds).mean()
    group_score = cross_val_score(model, X, split.y_train, cv=group_folds).mean()
    assert random_score > 0.9
    assert 0.3 < group_score < 0.7


def test_group_holdout_and_folds_keep_every_group_on_one_side() -> None:
    frame = grouped_frame()
    config = config_for(groups="patient_id", test_size=0.25)
    _, profile, split = grouped_split(frame, config)
    assert "patient_id" not in profile.feature_columns
    assert "patient_id" not in split.X_train.columns
    groups = frame["patient_id"]
    assert not set(groups[split.X_train.index]) & set(groups[split.X_test.index])
    assert 0.2 < len(split.X_test) / len(frame) < 0.3
    folds, _ = folds_for_split(split, 4, seed=0, task=profile.task)
    for train, validation in folds.split(split.X_train, split.y_train):
        train_groups = set(groups[split.X_train.index[train]])
        assert not train_groups & set(groups[split.X_train.index[validation]])


def test_groups_auto_uses_the_detected_column() -> None:
    frame = grouped_frame()
    settings = resolve_split_columns(frame, SplitConfig(groups="auto"), "label")
    assert settings.groups == "patient_id"


def test_groups_auto_without_a_group_column_names_the_key() -> None:
    frame = grouped_frame().drop(columns="patient_id")
    with pytest.raises(DataError, match=r"split\.groups"):
        resolve_split_columns(frame, SplitConfig(groups="auto"), "label")


def test_a_missing_split_column_or_empty_group_is_one_sentence() -> None:
    frame = grouped_frame()
    with pytest.raises(DataError, match=r"split\.groups column 'nope' is not in the data"):
        resolve_split_columns(frame, SplitConfig(groups="nope"), "label")
    frame.loc[3, "patient_id"] = None
    with pytest.raises(DataError, match=r"'patient_id' \(split\.groups\) is empty in 1 row"):
        grouped_split(frame, config_for(groups="patient_id"))


def test_groups_and_time_together_or_gap_alone_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not both"):
        config_for(groups="a", time="b")
    with pytest.raises(ConfigError, match="gap needs time"):
        config_for(gap=3)


def test_time_holdout_is_the_latest_period() -> None:
    frame = time_frame()
    config = config_for(time="day", test_size=0.25)
    _, _, split = grouped_split(frame, config)
    days = pd.to_datetime(frame["day"])
    assert "day" not in split.X_train.columns
    assert days[split.X_train.index].max() < days[split.X_test.index].min()
    assert len(split.X_test) == 50
    assert days[split.X_test.index].min() == pd.Timestamp("2024-01-01") + pd.Timedelta(days=150)


def test_time_gap_leaves_rows_out_between_train_and_test() -> None:
    frame = time_frame()
    _, _, split = grouped_split(frame, config_for(time="day", test_size=0.25, gap=10))
    days = pd.to_datetime(frame["day"])
    assert len(split.X_train) == 140
    assert (days[split.X_test.index].min() - days[split.X_train.index].max()).days == 11


def test_forward_folds_validate_only_later_rows() -> None:
    frame = time_frame()
    _, profile, split = grouped_split(frame, config_for(time="day"))
    folds, _ = folds_for_split(split, 4, seed=0, task=profile.task)
    days = pd.to_datetime(frame["day"])
    previous_end = None
    for train, validation in folds.split(split.X_train, split.y_train):
        latest_fit = days[split.X_train.index[train]].max()
        assert latest_fit < days[split.X_train.index[validation]].min()
        assert previous_end is None or latest_fit >= previous_end  # chaining forward
        previous_end = latest_fit


def test_time_ties_stay_on_one_side() -> None:
    frame = time_frame()
    frame["day"] = frame["day"].str.slice(0, 7)  # months: many rows share a time
    _, _, split = grouped_split(frame, config_for(time="day", test_size=0.3))
    months = frame["day"]
    assert months[split.X_train.index].max() < months[split.X_test.index].min()


def test_unreadable_times_are_named() -> None:
    frame = time_frame()
    frame.loc[5, "day"] = "soon"
    with pytest.raises(DataError, match=r"'day' \(split\.time\) holds 1 value.*'soon'"):
        grouped_split(frame, config_for(time="day"))


def test_detectors_find_group_and_date_columns_and_ignore_plain_ones() -> None:
    frame = grouped_frame()
    frame["visit_date"] = pd.date_range("2020-01-01", periods=len(frame)).astype(str)
    frame["count"] = np.arange(len(frame)) % 50
    frame["colour"] = np.where(frame.index % 2 == 0, "red", "blue")
    assert likely_group_column(frame, exclude=("label",)) == "patient_id"
    assert likely_time_column(frame) == "visit_date"
    frame["birth_date"] = pd.date_range("2020-01-01", periods=60).astype(str)[
        np.arange(len(frame)) % 60
    ]  # repeated dates: a time column, never a group key
    assert likely_group_column(frame.drop(columns="patient_id"), exclude=("label",)) is None
    plain = frame.drop(columns=["patient_id", "visit_date", "birth_date"])
    assert likely_group_column(plain, exclude=("label",)) is None
    assert likely_time_column(plain) is None


def test_profile_frame_is_unchanged_without_split_columns() -> None:
    frame = grouped_frame()
    assert "patient_id" in profile_frame(frame, "label").feature_columns


def test_detectors_read_dates_as_the_datetime_role_does_and_prefer_its_group_keys() -> None:
    """Day/month/year dates are a time column (times of day are not: they repeat daily), and a
    column the profile calls a group key comes before a merely id-named one."""
    rng = np.random.default_rng(0)
    n_rows = 600
    frame = pd.DataFrame(
        {
            "clock": [
                f"{h:02d}:{m:02d}"
                for h, m in zip(
                    rng.integers(0, 24, n_rows), rng.integers(0, 60, n_rows), strict=True
                )
            ],
            "visit": pd.date_range("2021-01-01", periods=n_rows).strftime("%d/%m/%Y"),
            "ward_id": rng.integers(0, 12, n_rows),  # id-named, 12 repeating values
            "customer": [f"c{i}" for i in rng.integers(0, 150, n_rows)],  # 150 levels: group_key
            "label": rng.choice(["no", "yes"], n_rows),
        }
    )
    assert likely_time_column(frame) == "visit"
    assert likely_time_column(frame.drop(columns="visit")) is None
    assert infer_role(frame["customer"], "customer").role == "group_key"
    assert likely_group_column(frame, exclude=("label",)) == "customer"
    assert likely_group_column(frame.drop(columns="customer"), exclude=("label",)) == "ward_id"


def same_folds(first: list[Any], second: list[Any]) -> bool:
    return len(first) == len(second) and all(
        np.array_equal(a, c) and np.array_equal(b, d)
        for (a, b), (c, d) in zip(first, second, strict=True)
    )


def test_remembered_folds_are_the_splitters_own_and_computed_once_per_set_of_rows() -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"x": rng.normal(size=300)}, index=rng.permutation(1000)[:300])
    y = pd.Series(rng.choice(["b", "a", "c c", "é"], 300, p=[0.5, 0.3, 0.15, 0.05]), index=X.index)
    plain = StratifiedKFold(4, shuffle=True, random_state=7)
    folds = RememberedFolds(plain)
    first = list(folds.split(X, y))
    assert same_folds(first, list(plain.split(X, y)))  # labels as codes: the same folds
    assert next(iter(folds.split(X, y)))[0] is first[0][0]  # the same rows: not split again
    sample = X.iloc[:120]
    assert same_folds(
        list(folds.split(sample, y.loc[sample.index])),
        list(plain.split(sample, y.loc[sample.index])),
    )
    copied = pickle.loads(pickle.dumps(folds))  # a Dask worker gets the splitter, not the memo
    assert same_folds(list(copied.split(X, y)), first)
    assert folds.get_n_splits() == 4


def test_folds_for_group_and_time_splits_are_remembered_and_unchanged() -> None:
    for frame, split_settings in (
        (grouped_frame(), {"groups": "patient_id"}),
        (time_frame(), {"time": "day"}),
    ):
        _, profile, split = grouped_split(frame, config_for(**split_settings))
        folds, _ = folds_for_split(split, 3, seed=0, task=profile.task)
        assert isinstance(folds, RememberedFolds)
        assert same_folds(
            list(folds.split(split.X_train, split.y_train)),
            list(folds.folds.split(split.X_train, split.y_train)),
        )


def test_fast_labels_keep_the_classes_and_their_order() -> None:
    y = pd.Series(["yes", "no ", "é", "Z", "no "], dtype="str", index=[9, 3, 5, 7, 1])
    labels = fast_labels(y)
    assert labels.dtype.kind == "U"
    assert list(np.unique(labels)) == sorted(y.unique()) == list(np.unique(y.to_numpy()))
    assert list(labels) == list(y)
    assert fast_labels(pd.Series([1.5, 2.0])).dtype == float


def test_whole_numbers_are_told_from_measurements_past_the_first_values() -> None:
    whole = pd.Series(np.arange(3_000, dtype=float))
    assert whole_numbers_or_labels(whole)
    assert not whole_numbers_or_labels(whole.where(whole != 2_500, 2_500.5))  # past the peek
    assert not whole_numbers_or_labels(whole.where(whole != 2_999, np.inf))
    assert not whole_numbers_or_labels(whole / 7)
    assert whole_numbers_or_labels(whole.where(whole % 2 == 0))  # gaps are not values
