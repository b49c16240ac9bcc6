"""Threshold tuning sees training rows only, and serves the objective it was given."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import TunedThresholdClassifierCV

from tasks.config import ImputeConfig, ThresholdConfig
from tasks.data.profile import profile_frame
from tasks.data.split import GroupFolds, RememberedFolds, make_folds, split_frame
from tasks.model_selection.pipeline import FAMILIES, build_pipeline
from tasks.model_selection.threshold import negative_cost, precision_at_min_recall, tune_threshold
from tasks.run.model_io import load_skops, save_model
from tests.conftest import make_frame


def fitted_setup() -> tuple:
    frame = make_frame(240, positive_share=0.25, seed=3)
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.25, seed=0)
    folds, _ = make_folds(split.y_train, 3, seed=0)
    model = build_pipeline(
        FAMILIES["logistic_regression"],
        profile.numeric_columns,
        profile.categorical_columns,
        ImputeConfig(),
        seed=0,
    )
    return split, folds, model.fit(split.X_train, split.y_train)


def test_tuning_never_receives_a_test_row_or_label(monkeypatch: pytest.MonkeyPatch) -> None:
    split, folds, model = fitted_setup()
    seen: list[pd.Index] = []
    original_fit = TunedThresholdClassifierCV.fit

    def spy_fit(self, X, y, **params):  # type: ignore[no-untyped-def]
        seen.append(X.index)
        return original_fit(self, X, y, **params)

    monkeypatch.setattr(TunedThresholdClassifierCV, "fit", spy_fit)
    tuned = tune_threshold(model, split.X_train, split.y_train, folds, ThresholdConfig(), "yes", 0)
    assert len(seen) == 1
    assert seen[0].equals(split.X_train.index)
    assert not seen[0].isin(split.X_test.index).any()
    assert 0.0 < tuned.best_threshold_ < 1.0


def test_the_threshold_does_not_depend_on_test_labels() -> None:
    split, folds, model = fitted_setup()
    tuned = tune_threshold(model, split.X_train, split.y_train, folds, ThresholdConfig(), "yes", 0)
    flipped = split.y_test.map({"yes": "no", "no": "yes"})
    assert not flipped.equals(split.y_test)
    again = tune_threshold(model, split.X_train, split.y_train, folds, ThresholdConfig(), "yes", 0)
    assert again.best_threshold_ == tuned.best_threshold_


def test_min_recall_objective_reaches_the_recall() -> None:
    split, folds, model = fitted_setup()
    config = ThresholdConfig(objective="min_recall", min_recall=0.9)
    tuned = tune_threshold(model, split.X_train, split.y_train, folds, config, "yes", 0)
    default = tune_threshold(
        model, split.X_train, split.y_train, folds, ThresholdConfig(), "yes", 0
    )
    assert tuned.best_threshold_ <= default.best_threshold_


def test_objective_functions_by_hand() -> None:
    y_true = ["yes", "yes", "no", "no", "no"]
    y_pred = ["yes", "no", "yes", "no", "no"]
    assert precision_at_min_recall(y_true, y_pred, 0.5, "yes") == pytest.approx(0.5)
    assert precision_at_min_recall(y_true, y_pred, 0.9, "yes") == pytest.approx(-0.5)
    assert negative_cost(y_true, y_pred, cost_fp=1.0, cost_fn=5.0, pos_label="yes") == -6.0


def test_a_model_tuned_on_group_folds_saves_and_loads_without_the_groups(tmp_path: Path) -> None:
    split, _, model = fitted_setup()
    groups = pd.Series(np.arange(len(split.X_train)) // 4, index=split.X_train.index)
    folds = RememberedFolds(GroupFolds(groups, 3, seed=0, stratified=True))
    tuned = tune_threshold(
        model, split.X_train, split.y_train, folds, ThresholdConfig(), "yes", seed=0
    )
    assert tuned.get_params()["cv"] == 3  # the number of folds, not the rows' groups

    loaded = load_skops(save_model(tuned, tmp_path / "best.skops"))

    assert (loaded.predict(split.X_test) == tuned.predict(split.X_test)).all()
