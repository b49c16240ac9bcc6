"""Regression: inference of the task, split and folds, the course's normal equation, metrics by
hand, the bundled Hitters contract, and real flow runs through Prefect whose model is the
dataset's champion, serves new rows and is judged against by the next run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

from tasks.checks import load_config
from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import make_folds, split_frame
from tasks.errors import ConfigError, DataError
from tasks.evaluation.metrics import regression_metrics
from tasks.model_selection.pipeline import REGRESSION_FAMILIES, build_pipeline, choose_families
from tasks.model_selection.search import choose_selection_metric
from tasks.run.model_io import load_checked_model
from tasks.serving.api import build_app
from tasks.serving.predict import load_run_model, predict_rows, prediction_summary

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_regression_frame(n_rows: int = 90, seed: int = 0) -> pd.DataFrame:
    """y = 3·x1 − 2·x2 + colour effect + noise; ~10% feature gaps, 5 rows without a target."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n_rows)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n_rows),
            "x2": rng.normal(size=n_rows),
            "colour": colour,
        }
    )
    effect = pd.Series(colour).map({"red": 1.0, "green": 0.0, "blue": -1.0}).to_numpy()
    frame["y"] = 3 * frame["x1"] - 2 * frame["x2"] + effect + rng.normal(scale=0.3, size=n_rows)
    for column in ("x1", "x2", "colour"):
        frame.loc[rng.random(n_rows) < 0.1, column] = np.nan
    frame.loc[:4, "y"] = np.nan
    return frame


def test_numeric_target_with_many_values_is_regression() -> None:
    profile = profile_frame(make_regression_frame(), "y")
    assert profile.task == "regression"
    assert profile.dropped_target_rows == 5
    assert profile.n_rows == 85
    assert profile.classes == []
    assert profile.numeric_columns == ["x1", "x2"]
    assert profile.categorical_columns == ["colour"]
    assert profile.target_summary["min"] <= profile.target_summary["mean"]


def test_numeric_target_with_few_values_stays_classification() -> None:
    frame = make_regression_frame()
    frame["y"] = np.arange(len(frame)) % 3
    assert profile_frame(frame, "y").task == "multiclass"


def test_regression_of_a_text_target_is_a_data_error() -> None:
    frame = make_regression_frame().assign(y=lambda f: np.where(f["x1"] > 0, "up", "down"))
    with pytest.raises(DataError, match="'y' is not numeric"):
        profile_frame(frame, "y", task="regression")


def test_regression_split_and_folds_are_plain_seeded_kfold() -> None:
    frame = make_regression_frame()
    profile = profile_frame(frame, "y")
    split = split_frame(frame, profile, test_size=0.25, seed=3)
    assert len(split.y_train) + len(split.y_test) == 85
    assert split.y_train.dtype == float
    folds, note = make_folds(split.y_train, 4, seed=3, task="regression")
    assert isinstance(folds, KFold)
    assert (folds.n_splits, folds.shuffle, folds.random_state, note) == (4, True, 3, None)
    again = split_frame(frame, profile, test_size=0.25, seed=3)
    assert list(again.X_test.index) == list(split.X_test.index)


def normal_equation(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The course's OLS: β̂ = (XᵀX)⁻¹Xᵀy with a column of ones for the intercept."""
    design = np.column_stack([np.ones(len(X)), X])
    return np.linalg.solve(design.T @ design, design.T @ y)


def test_linear_regression_equals_the_normal_equation() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(30, 3))
    y = 1.5 + X @ np.array([2.0, -1.0, 0.5]) + rng.normal(scale=0.2, size=30)
    beta = normal_equation(X, y)

    direct = LinearRegression().fit(X, y)
    np.testing.assert_allclose(direct.intercept_, beta[0], rtol=1e-10)
    np.testing.assert_allclose(direct.coef_, beta[1:], rtol=1e-10)

    # The pipeline standardises first: same fitted values, coefficients in standard units.
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    pipeline = build_pipeline(
        REGRESSION_FAMILIES["linear_regression"], ["a", "b", "c"], [], ImputeConfig(), seed=0
    ).fit(frame, y)
    design = np.column_stack([np.ones(len(X)), X])
    np.testing.assert_allclose(pipeline.predict(frame), design @ beta, rtol=1e-10)
    scale = pipeline.named_steps["encode"].named_transformers_["numeric"].scale_
    np.testing.assert_allclose(pipeline.named_steps["model"].coef_ / scale, beta[1:], rtol=1e-10)


def test_regression_metrics_by_hand() -> None:
    y_true = pd.Series([1.0, 2.0, 3.0, 4.0])
    y_pred = pd.Series([1.0, 3.0, 2.0, 6.0])  # residuals 0, −1, 1, −2
    report = regression_metrics(y_true, y_pred)
    assert report["mse"] == pytest.approx(6 / 4)
    assert report["rmse"] == pytest.approx(math.sqrt(1.5))
    assert report["mae"] == pytest.approx(4 / 4)
    assert report["r2"] == pytest.approx(1 - 6 / 5)  # total sum of squares about 2.5 is 5
    assert report["notes"] == []


def test_r2_of_a_constant_target_is_undefined_with_a_note() -> None:
    report = regression_metrics(pd.Series([2.0, 2.0, 2.0]), pd.Series([1.0, 2.0, 3.0]))
    assert report["r2"] is None
    assert report["mse"] == pytest.approx(2 / 3)
    assert report["notes"] == ["r2 is undefined: the true values do not vary."]


def test_selection_metric_for_regression() -> None:
    profile = profile_frame(make_regression_frame(), "y")
    choice = choose_selection_metric(profile, None)
    assert choice.metric == "neg_root_mean_squared_error"
    assert "MSE" in choice.reason
    assert choose_selection_metric(profile, "r2").metric == "r2"
    with pytest.raises(ConfigError, match="'roc_auc' is a classification metric"):
        choose_selection_metric(profile, "roc_auc")


def test_families_by_task() -> None:
    assert choose_families([], "regression") == [
        "linear_regression",
        "ridge",
        "knn",
        "decision_tree",
        "random_forest",
        "hist_gradient_boosting",
    ]
    assert choose_families(["ridge"], "regression") == ["ridge"]
    with pytest.raises(ConfigError, match="'ridge' is not a binary model family"):
        choose_families(["ridge"], "binary")


def test_bundled_hitters_validates_and_profiles() -> None:
    from schemas.hitters import HittersSchema

    config = load_config(PROJECT_ROOT / "configs" / "hitters.yaml")
    frame = HittersSchema.validate(pd.read_csv(config.data), lazy=True)
    profile = profile_frame(frame, config.target, task=config.task)
    assert profile.task == "regression"
    assert (profile.n_rows, profile.dropped_target_rows) == (263, 59)
    assert profile.categorical_columns == ["League", "Division", "NewLeague"]


def test_regression_flow_writes_the_run_contract(prefect_harness: None, tmp_path: Path) -> None:
    from flows.runtime import TrainParameters
    from flows.train import train
    from tasks.evaluation.evaluate import regression_metrics_from_predictions

    data = tmp_path / "reg.csv"
    make_regression_frame().to_csv(data, index=False)
    params = TrainParameters(
        data=str(data),
        target="y",
        overrides=[
            "models=[linear_regression, ridge]",
            "split.cv_folds=3",
            f"runs_dir={tmp_path / 'runs'}",
        ],
    )
    run_dir = Path(train(params))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "regression"
    assert metrics["selection_metric"] == "neg_root_mean_squared_error"
    assert metrics["dropped_target_rows"] == 5
    assert {f["family"] for f in metrics["families"]} == {"linear_regression", "ridge"}
    assert all(f["best_score"] < 0 for f in metrics["families"])  # negated RMSE
    assert set(metrics["test_metrics"]) >= {"mse", "rmse", "mae", "r2"}
    assert metrics["test_metrics"]["r2"] > 0.8  # the signal is strong and linear
    rmse_interval = metrics["test_metrics"]["intervals"]["metrics"]["rmse"]
    assert rmse_interval["low"] < metrics["test_metrics"]["rmse"] < rmse_interval["high"]

    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert list(predictions.columns) == ["row", "y_true", "y_pred"]
    assert len(predictions) == metrics["n_test"]
    recomputed = regression_metrics_from_predictions(predictions)
    assert recomputed["mse"] == pytest.approx(metrics["test_metrics"]["mse"], rel=1e-12)

    for plot in ("predicted_vs_actual", "residuals", "cv_scores", "missing_values"):
        assert (run_dir / "plots" / f"{plot}.png").stat().st_size > 0
    model, _ = load_checked_model(run_dir / "models" / "best.skops", run_dir.parent)
    raw = make_regression_frame().drop(columns="y").iloc[predictions["row"]]
    np.testing.assert_allclose(model.predict(raw), predictions["y_pred"], rtol=1e-9)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    assert (run_dir / "report.html").is_file()

    # The run is its dataset's first champion; the model serves new rows (batch and API) ...
    assert json.loads((run_dir / "champion.json").read_text())["outcome"] == "first-champion"
    runs_dir = run_dir.parent
    served = load_run_model(f"champion:{metrics['dataset']}", runs_dir)
    new_rows = make_regression_frame(seed=1).drop(columns="y").head(6)
    batch = predict_rows(served, new_rows, "new.csv")
    assert list(batch.columns) == ["row", "y_pred"]
    np.testing.assert_allclose(batch["y_pred"], model.predict(new_rows), rtol=1e-9)
    summary = {s["statistic"]: s["value"] for s in prediction_summary(batch, served.classes)}
    assert summary["count"] == 6 and summary["min"] <= summary["mean"] <= summary["max"]
    records = json.loads(new_rows.to_json(orient="records"))
    answer = TestClient(build_app(served, runs_dir)).post("/predict", json=records).json()
    assert [p["y_pred"] for p in answer["predictions"]] == pytest.approx(list(batch["y_pred"]))
    assert answer["value_summary"][0] == {"statistic": "count", "value": 6.0}

    # ... and a second run is judged against it on the same test rows.
    second = Path(train(params))
    decision = json.loads((second / "champion.json").read_text())
    assert decision["outcome"] in ("beats-champion", "within-noise", "worse")
    assert decision["ci_low"] <= decision["difference"] <= decision["ci_high"]
    assert decision["new_score"] == pytest.approx(-metrics["test_metrics"]["rmse"])
