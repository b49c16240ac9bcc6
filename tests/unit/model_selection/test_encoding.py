"""Bounded encoding: the width and memory estimate, the budget, native categories, calendar
features inside the pipeline, and the families skipped for size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

from tasks.config import EncodingConfig, ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import split_frame
from tasks.model_selection.encoding import (
    feasible_families,
    layout_for,
    plan_encoding,
    prepared_bytes,
)
from tasks.model_selection.pipeline import FAMILIES, REGRESSION_FAMILIES, build_pipeline
from tasks.model_selection.prepared import data_bytes


def mixed_frame(n_rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Numbers, a few-level category, a many-level category with signal, and a timestamp."""
    rng = np.random.default_rng(seed)
    shop = rng.integers(0, 80, size=n_rows)
    y = (rng.random(n_rows) < 0.2 + 0.6 * (shop % 2)).astype(int)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, size=n_rows),
            "colour": rng.choice(["red", "green", "blue"], size=n_rows),
            "shop": [f"shop-{s}" for s in shop],
            "when": pd.date_range("2023-01-01", periods=n_rows, freq="5h").strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "label": np.where(y == 1, "yes", "no"),
        }
    )


def fitted(family_name: str, frame: pd.DataFrame, settings: EncodingConfig | None = None):  # type: ignore[no-untyped-def]
    settings = settings or EncodingConfig()
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.25, seed=0)
    plan = plan_encoding(profile, split.X_train, settings, cv_folds=5)
    pipeline = build_pipeline(
        FAMILIES[family_name],
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(),
        seed=0,
        layout=layout_for(profile, split.X_train, plan, settings, seed=0),
    )
    pipeline.fit(split.X_train, split.y_train)
    return pipeline, plan, split, profile


def test_the_width_estimate_is_the_encoded_width_and_the_raw_date_is_never_one_hot() -> None:
    pipeline, plan, split, profile = fitted("logistic_regression", mixed_frame())
    assert profile.column_roles["shop"].encoding == "target"
    assert profile.column_roles["when"].role == "datetime"
    encoded = pipeline[:-1].transform(split.X_test)
    assert encoded.shape[1] == plan.encoded_width
    names = list(pipeline.named_steps["encode"].get_feature_names_out())
    assert not any("2023-" in name for name in names)  # no one-hot of raw date values
    assert {"numeric__when__month", "numeric__when__hour"} <= set(names)
    assert isinstance(
        pipeline.named_steps["encode"].named_transformers_["target"][0], TargetEncoder
    )
    assert plan.fold_megabytes > 0 and plan.fold_rows == int(np.ceil(len(split.X_train) * 0.8))


@pytest.mark.parametrize(
    "family", ["logistic_regression", "hist_gradient_boosting", "random_forest", "knn"]
)
def test_prepared_bytes_bound_what_any_familys_data_steps_make(family: str) -> None:
    """The search prepares every fold at once when this estimate fits its store."""
    pipeline, plan, split, _ = fitted(family, mixed_frame())
    prepared = pipeline[:-1].transform(split.X_train)
    assert 0 < data_bytes(prepared) <= prepared_bytes(plan, len(split.X_train))


def test_unseen_and_missing_values_at_predict_time_are_handled() -> None:
    pipeline, _, split, _ = fitted("logistic_regression", mixed_frame())
    odd = split.X_test.head(3).copy()
    odd["colour"] = ["purple", None, "red"]
    odd["shop"] = ["shop-new", None, "shop-1"]
    odd["when"] = ["not a date", None, "2023-02-03T04:05:06"]
    assert pipeline.predict_proba(odd).shape == (3, 2)


def test_hist_gradient_boosting_gets_native_categories_not_one_hot() -> None:
    pipeline, _, split, profile = fitted("hist_gradient_boosting", mixed_frame())
    encoder = pipeline.named_steps["encode"]
    assert isinstance(encoder.named_transformers_["categorical"], OrdinalEncoder)
    model = pipeline.named_steps["model"]
    numbers = len(profile.numeric_columns) + len(profile.column_roles["when"].calendar_parts)
    assert list(model.categorical_features) == [numbers]  # 'colour', after the numbers
    assert model.is_categorical_ is not None and model.is_categorical_.sum() == 1
    assert pipeline.predict(split.X_test).shape == (len(split.X_test),)


def test_regression_hist_gradient_boosting_also_gets_native_categories() -> None:
    frame = mixed_frame().assign(label=lambda f: f["amount"] * 3 + np.arange(len(f)) % 7)
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.25, seed=0)
    plan = plan_encoding(profile, split.X_train, EncodingConfig(), cv_folds=5)
    pipeline = build_pipeline(
        REGRESSION_FAMILIES["hist_gradient_boosting"],
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(),
        seed=0,
        layout=layout_for(profile, split.X_train, plan, EncodingConfig(), seed=0),
    )
    pipeline.fit(split.X_train, split.y_train)
    assert pipeline.named_steps["model"].is_categorical_.sum() == 1


def wide_frame(n_rows: int) -> pd.DataFrame:
    """Six categoricals of 30 levels each: 180 one-hot columns at the default cap."""
    rng = np.random.default_rng(1)
    columns = {f"c{i}": [f"v{v}" for v in rng.integers(0, 30, n_rows)] for i in range(6)}
    return pd.DataFrame({**columns, "label": rng.choice(["a", "b"], n_rows)})


def test_over_the_budget_the_one_hot_cap_is_lowered_with_a_note() -> None:
    frame = wide_frame(20_000)
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.2, seed=0)
    roomy = plan_encoding(profile, split.X_train, EncodingConfig(), cv_folds=5)
    tight = plan_encoding(profile, split.X_train, EncodingConfig(memory_budget_mb=16), cv_folds=5)
    assert roomy.max_one_hot == 30 and roomy.encoded_width == 180 and not roomy.notes
    assert roomy.fold_megabytes > 16
    assert tight.max_one_hot < 30 and tight.fold_megabytes <= 16
    assert not tight.sparse
    assert "exceed the 16 MB budget" in tight.notes[0]
    layout = layout_for(profile, split.X_train, tight, EncodingConfig(), seed=0)
    pipeline = build_pipeline(
        FAMILIES["logistic_regression"],
        [],
        profile.categorical_columns,
        ImputeConfig(),
        0,
        layout=layout,
    )
    one_hot = pipeline.named_steps["encode"].transformers[1][1]
    assert isinstance(one_hot, OneHotEncoder) and one_hot.max_categories == tight.max_one_hot


def test_when_even_the_smallest_cap_is_over_budget_the_one_hot_is_sparse() -> None:
    frame = wide_frame(2_000)
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.2, seed=0)
    tiny = EncodingConfig.model_construct(max_one_hot=30, min_frequency=5, memory_budget_mb=0)
    plan = plan_encoding(profile, split.X_train, tiny, cv_folds=5)
    assert plan.sparse and plan.max_one_hot == 2
    assert "sparse" in plan.notes[-1]
    layout = layout_for(profile, split.X_train, plan, tiny, seed=0)
    pipeline = build_pipeline(
        FAMILIES["logistic_regression"],
        [],
        profile.categorical_columns,
        ImputeConfig(),
        0,
        layout=layout,
    )
    pipeline.fit(split.X_train, split.y_train)
    assert pipeline.predict(split.X_test).shape == (len(split.X_test),)


@pytest.mark.parametrize(
    ("n_train", "width", "explicit", "skipped"),
    [
        (5_000, 50, False, set()),
        (25_000, 50, False, {"svm"}),
        (25_000, 50, True, set()),  # the config named them: they run
        (40_000, 1_000, False, {"svm", "knn"}),
    ],
)
def test_families_that_cannot_cope_with_the_size_are_skipped_with_a_reason(
    n_train: int, width: int, explicit: bool, skipped: set[str]
) -> None:
    families = ["logistic_regression", "knn", "svm", "hist_gradient_boosting"]
    kept, reasons = feasible_families(families, n_train, width, explicit=explicit)
    assert set(reasons) == skipped
    assert kept == [f for f in families if f not in skipped]
    for reason in reasons.values():
        assert str(n_train) in reason
