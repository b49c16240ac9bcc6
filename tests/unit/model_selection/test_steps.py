"""Each plain step of the flow on tiny seeded data."""

import pandas as pd
import pytest
from imblearn.over_sampling import SMOTENC, RandomOverSampler
from sklearn.model_selection import train_test_split

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import fold_count, make_folds, split_frame
from tasks.errors import DataError
from tasks.model_selection.pipeline import (
    FAMILIES,
    REGRESSION_FAMILIES,
    build_param_grid,
    build_pipeline,
    resolve_rebalancing,
    size_params,
    unknown_grid_parameters,
)
from tasks.model_selection.search import (
    FamilyResult,
    build_scorer,
    choose_selection_metric,
    search_family,
    select_best,
)
from tests.conftest import make_frame


def test_profile_infers_task_kinds_minority_and_gaps(binary_frame: pd.DataFrame) -> None:
    profile = profile_frame(binary_frame, "label")
    assert profile.task == "binary"
    assert profile.positive_label == "yes"  # the minority class
    assert profile.numeric_columns == ["x1", "x2"]
    assert profile.categorical_columns == ["colour"]
    assert profile.missing_per_column["x1"] == binary_frame["x1"].isna().sum()
    assert sum(profile.class_counts.values()) == len(binary_frame)


def test_profile_leaves_out_constant_empty_and_identifier_columns(
    binary_frame: pd.DataFrame,
) -> None:
    frame = binary_frame.assign(
        constant=1, empty=float("nan"), customer_id=[f"c{i}" for i in range(len(binary_frame))]
    )
    profile = profile_frame(frame, "label")
    assert set(profile.dropped_columns) == {"constant", "empty", "customer_id"}
    assert "customer_id" not in profile.feature_columns


def test_rows_with_empty_target_are_counted_and_dropped(binary_frame: pd.DataFrame) -> None:
    frame = binary_frame.copy()
    frame.loc[:4, "label"] = None
    profile = profile_frame(frame, "label")
    assert profile.dropped_target_rows == 5
    assert profile.n_rows == len(frame) - 5


def test_single_class_target_is_refused(binary_frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="single class"):
        profile_frame(binary_frame.assign(label="yes"), "label")


def test_split_is_stratified_seeded_and_disjoint(binary_frame: pd.DataFrame) -> None:
    profile = profile_frame(binary_frame, "label")
    first = split_frame(binary_frame, profile, 0.25, seed=3)
    again = split_frame(binary_frame, profile, 0.25, seed=3)
    other = split_frame(binary_frame, profile, 0.25, seed=4)
    assert first.X_test.index.equals(again.X_test.index)
    assert not first.X_test.index.equals(other.X_test.index)
    assert not set(first.X_train.index) & set(first.X_test.index)
    share = (first.y_test == "yes").mean()
    assert share == pytest.approx((binary_frame["label"] == "yes").mean(), abs=0.05)
    assert "label" not in first.X_train.columns


def test_the_split_is_scikit_learns_stratified_on_the_labels_themselves() -> None:
    """split_frame stratifies on integer codes of the labels (faster): the same rows."""
    frame = make_frame(300, positive_share=0.3, seed=2)
    frame["label"] = frame["label"].map({"yes": "zebra", "no": "ant"}).astype("string")
    frame.loc[frame.index[::7], "label"] = "moth"
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.25, seed=5)
    y = frame["label"].astype(object)
    _, expected_test = train_test_split(frame.index, test_size=0.25, stratify=y, random_state=5)
    assert split.X_test.index.equals(pd.Index(expected_test))


def test_fewer_folds_when_a_class_is_smaller_than_the_folds() -> None:
    y = pd.Series(["a"] * 20 + ["b"] * 3)
    assert fold_count(y, 5)[0] == 3
    assert "class 'b' has 3 training rows" in (fold_count(y, 5)[1] or "")
    assert fold_count(y, 3) == (3, None)


def test_a_class_of_two_rows_is_an_error_naming_it() -> None:
    frame = make_frame(60)
    frame.loc[:1, "label"] = "rare"
    profile = profile_frame(frame, "label", task="multiclass")
    with pytest.raises(DataError, match=r"Class 'rare' of target 'label' has only 2 row"):
        split_frame(frame, profile, 0.2, 0)


def test_selection_metric_follows_the_course_rule() -> None:
    imbalanced = profile_frame(make_frame(200, positive_share=0.1), "label")
    balanced = profile_frame(make_frame(200, positive_share=0.5), "label")
    assert choose_selection_metric(imbalanced, None).metric == "average_precision"
    assert choose_selection_metric(balanced, None).metric == "roc_auc"
    assert choose_selection_metric(balanced, "f1").metric == "f1"
    assert "imbalance" in choose_selection_metric(imbalanced, None).reason


def test_auto_rebalancing_uses_class_weights_or_under_sampling() -> None:
    lr, knn = FAMILIES["logistic_regression"], FAMILIES["knn"]
    assert resolve_rebalancing(["auto"], lr, roughly_balanced=False, task="binary") == [
        "class_weight"
    ]
    assert resolve_rebalancing(["auto"], knn, roughly_balanced=False, task="binary") == [
        "random_under"
    ]
    assert resolve_rebalancing(["auto"], lr, roughly_balanced=True, task="binary") == ["none"]


def test_rebalancing_choices_become_part_of_the_grid() -> None:
    lr = FAMILIES["logistic_regression"]
    grid = build_param_grid(
        lr, {"C": [1.0]}, ["random_over", "smote", "class_weight"], ["colour"], seed=0
    )
    assert isinstance(grid[0]["rebalance"][0], RandomOverSampler)
    assert isinstance(grid[1]["rebalance"][0], SMOTENC)
    assert grid[2]["model__class_weight"] == ["balanced"]
    assert grid[0]["model__class_weight"] == [None]


def test_unknown_grid_parameter_is_found() -> None:
    assert unknown_grid_parameters(FAMILIES["random_forest"], {"max_dept": [3]}) == ["max_dept"]


def test_search_fits_every_candidate_and_refits_the_best(binary_frame: pd.DataFrame) -> None:
    profile = profile_frame(binary_frame, "label")
    split = split_frame(binary_frame, profile, 0.25, 0)
    folds, _ = make_folds(split.y_train, 3, 0)
    family = FAMILIES["decision_tree"]
    pipeline = build_pipeline(
        family, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
    )
    grid = build_param_grid(
        family,
        {"max_depth": [2, 4]},
        ["class_weight", "random_under"],
        profile.categorical_columns,
        0,
    )
    result = search_family(
        "decision_tree",
        pipeline,
        grid,
        split.X_train,
        split.y_train,
        build_scorer("average_precision", "yes"),
        folds,
    )
    assert result.status == "completed"
    assert len(result.candidates) == 4
    assert result.best_score == max(c["mean_score"] for c in result.candidates)
    assert result.estimator is not None
    assert set(result.estimator.predict(split.X_test)) <= {"yes", "no"}


def test_a_failing_family_is_recorded_and_select_skips_it(binary_frame: pd.DataFrame) -> None:
    profile = profile_frame(binary_frame, "label")
    split = split_frame(binary_frame, profile, 0.25, 0)
    folds, _ = make_folds(split.y_train, 3, 0)
    family = FAMILIES["logistic_regression"]
    pipeline = build_pipeline(
        family, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
    )
    grid = build_param_grid(family, {"C": [-1.0]}, ["none"], profile.categorical_columns, 0)
    failed = search_family(
        "logistic_regression", pipeline, grid, split.X_train, split.y_train, "roc_auc", folds
    )
    assert failed.status == "failed"
    good = FamilyResult("knn", "completed", best_score=0.7)
    assert select_best([failed, good]) is good
    with pytest.raises(DataError, match="Every model family failed"):
        select_best([failed])


def test_boosting_on_mid_sized_data_stops_early_and_may_run_longer() -> None:
    boosting = FAMILIES["hist_gradient_boosting"]
    longer = {"model__early_stopping": True, "model__max_iter": 300}

    assert size_params(boosting, 12_000) == longer
    assert size_params(REGRESSION_FAMILIES["hist_gradient_boosting"], 12_000) == longer
    assert size_params(boosting, 9_999) == {}  # no early stopping: 300 trees would cost 3x
    # above: scikit-learn's 100 iterations, and early stopping also in a fit an under-sampler
    # leaves under 10,000 rows; successive halving keeps scikit-learn's defaults
    assert size_params(boosting, 50_000) == {"model__early_stopping": True}
    assert size_params(boosting, 50_000, halving=True) == {}
    assert size_params(FAMILIES["random_forest"], 12_000) == {}
    pipeline = build_pipeline(boosting, ["x"], [], ImputeConfig(), 0)
    model = pipeline.set_params(**size_params(boosting, 12_000)).named_steps["model"]
    assert (model.early_stopping, model.max_iter) == (True, 300)
