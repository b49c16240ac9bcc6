"""A saved model's answers for rows: labels and class probabilities, its card's decision
threshold applied. No schema checks here (tasks/serving/predict.py checks new rows first), so a
CV worker answering for the champion imports no pandera."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline

from tasks.evaluation.evaluate import probabilities_and_labels


def predict_with_card(model: Pipeline, card: dict[str, Any], X: pd.DataFrame) -> pd.DataFrame:
    """y_pred and, for a classifier, one probability column per class (named by class); a binary
    model with a decision threshold in its card predicts the positive class at or above it. A
    regressor's y_pred is its predicted value."""
    features = X[list(card["input_columns"])]
    if not card.get("classes"):  # regression
        return pd.DataFrame({"y_pred": model.predict(features)}, index=X.index)
    classes = [str(c) for c in model.classes_]
    threshold, positive = card.get("decision_threshold"), card.get("positive_label")
    if threshold is None or positive is None or len(classes) != 2:
        answers, predicted = probabilities_and_labels(model, features)  # transformed once
        probabilities = pd.DataFrame(answers, columns=classes, index=X.index)
        labels = pd.Series(predicted, index=X.index).astype(str)
    else:
        probabilities = pd.DataFrame(model.predict_proba(features), columns=classes, index=X.index)
        negative = next(c for c in classes if c != str(positive))
        chosen = np.where(probabilities[str(positive)] >= threshold, str(positive), negative)
        labels = pd.Series(chosen, index=X.index, dtype=str)
    return probabilities.assign(y_pred=labels)
