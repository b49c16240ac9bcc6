"""Score the selected pipeline once on the untouched test rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from tasks.evaluation.metrics import (
    classification_metrics,
    headline_metrics,
    regression_metrics,
)
from tasks.evaluation.uncertainty import bootstrap_intervals, regression_intervals

PROBABILITY_PREFIX = "proba_"


# Classifiers whose `predict` is, in scikit-learn's own code, `classes_` at the argmax of
# their predict_proba: their labels are taken from the probabilities instead of predicting twice.
MOST_PROBABLE_CLASS = (RandomForestClassifier, ExtraTreesClassifier)


def probabilities_and_labels(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """model.predict_proba(X) and model.predict(X). Of a pipeline, the data steps transform X
    once for both (samplers, which only resample while fitting, are skipped as in its predict);
    a threshold-tuned model answers both itself."""
    if not isinstance(model, Pipeline):
        return model.predict_proba(X), model.predict(X)
    transformed = X
    for step in model[:-1].named_steps.values():
        if step is not None and step != "passthrough" and not hasattr(step, "fit_resample"):
            transformed = step.transform(transformed)
    final = model[-1]
    probabilities = final.predict_proba(transformed)
    if isinstance(final, MOST_PROBABLE_CLASS):
        return probabilities, final.classes_.take(np.argmax(probabilities, axis=1))
    return probabilities, final.predict(transformed)


def predict_test(model: Pipeline, X_test: pd.DataFrame, y_test: pd.Series) -> pd.DataFrame:
    """Test rows: row index, y_true, y_pred and one probability column per class."""
    classes = [str(label) for label in model.classes_]
    probabilities, labels = probabilities_and_labels(model, X_test)
    frame = pd.DataFrame(
        probabilities, columns=[f"{PROBABILITY_PREFIX}{c}" for c in classes], index=X_test.index
    )
    predicted = pd.Series(labels, index=X_test.index).astype(str)
    frame.insert(0, "y_pred", predicted)
    frame.insert(0, "y_true", y_test.astype(str))
    frame.insert(0, "row", X_test.index)
    return frame.reset_index(drop=True)


def probability_columns(predictions: pd.DataFrame) -> pd.DataFrame:
    """The per-class probability columns, renamed to the class labels."""
    columns = [c for c in predictions.columns if c.startswith(PROBABILITY_PREFIX)]
    return predictions[columns].rename(columns=lambda c: c.removeprefix(PROBABILITY_PREFIX))


def metrics_from_predictions(
    predictions: pd.DataFrame, classes: list[str], positive_label: str | None
) -> dict[str, Any]:
    """Test metrics from what predictions.csv holds alone (so anyone can re-derive them)."""
    return classification_metrics(
        predictions["y_true"].astype(str),
        predictions["y_pred"].astype(str),
        probability_columns(predictions),
        classes,
        positive_label,
    )


def pipeline_of(model: Any) -> Pipeline:
    """The fitted imblearn pipeline inside a threshold-tuned wrapper (or the pipeline itself)."""
    return getattr(model, "estimator_", model)


def predictions_at(
    predictions: pd.DataFrame, positive_label: str, threshold: float
) -> pd.DataFrame:
    """The same predictions with y_pred re-decided at another threshold of the positive class."""
    probabilities = probability_columns(predictions)
    negative = next(c for c in probabilities.columns if c != positive_label)
    decided = probabilities[positive_label] >= threshold
    return predictions.assign(y_pred=decided.map({True: positive_label, False: negative}))


def report_test_metrics(
    predictions: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
    threshold: float | None,
    seed: int,
) -> dict[str, Any]:
    """Test metrics at the model's decision rule, 95% bootstrap intervals, and, when a threshold
    was tuned, the same metrics at 0.5 for comparison."""
    report = metrics_from_predictions(predictions, classes, positive_label)
    report["decision_threshold"] = threshold
    report["intervals"] = bootstrap_intervals(
        predictions["y_true"].astype(str),
        predictions["y_pred"].astype(str),
        probability_columns(predictions),
        classes,
        positive_label,
        seed,
        headline_metrics(report),
    )
    if threshold is not None and positive_label is not None:
        at_default = predictions_at(predictions, positive_label, 0.5)
        report["at_threshold_0.5"] = headline_metrics(
            metrics_from_predictions(at_default, classes, positive_label)
        )
    return report


def predict_values(model: Pipeline, X_test: pd.DataFrame, y_test: pd.Series) -> pd.DataFrame:
    """Regression test rows: row index, y_true, y_pred (numbers, not labels)."""
    return pd.DataFrame(
        {
            "row": X_test.index,
            "y_true": y_test.to_numpy(dtype=float),
            "y_pred": model.predict(X_test).astype(float),
        }
    )


def regression_metrics_from_predictions(predictions: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Test metrics and their 95% bootstrap intervals from predictions.csv alone."""
    report = regression_metrics(predictions["y_true"], predictions["y_pred"])
    report["intervals"] = regression_intervals(
        predictions["y_true"],
        predictions["y_pred"],
        seed,
        {name: report.get(name) for name in ("mse", "rmse", "mae", "r2")},
    )
    return report
