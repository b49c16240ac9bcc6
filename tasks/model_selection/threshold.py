"""Decision-threshold tuning (binary), on out-of-fold predictions of the training rows only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.metrics import confusion_matrix, f1_score, make_scorer
from sklearn.model_selection import BaseCrossValidator, TunedThresholdClassifierCV

from tasks.config import ThresholdConfig


def precision_at_min_recall(y_true: Any, y_pred: Any, min_recall: float, pos_label: str) -> float:
    """Precision once recall reaches min_recall; below it a negative score rising with recall."""
    positive_true = np.asarray(y_true) == pos_label
    positive_pred = np.asarray(y_pred) == pos_label
    true_positives = float((positive_true & positive_pred).sum())
    recall = true_positives / max(float(positive_true.sum()), 1.0)
    if recall < min_recall:
        return recall - 1.0
    return true_positives / max(float(positive_pred.sum()), 1.0)


def negative_cost(
    y_true: Any, y_pred: Any, cost_fp: float, cost_fn: float, pos_label: str
) -> float:
    """Minus the total misclassification cost (scorers are maximised)."""
    labels = [label for label in pd.unique(np.asarray(y_true)) if label != pos_label] + [pos_label]
    _, fp, fn, _ = confusion_matrix(y_true, y_pred, labels=labels[-2:]).ravel()
    return -(cost_fp * fp + cost_fn * fn)


def threshold_scorer(config: ThresholdConfig, positive_label: str) -> Any:
    if config.objective == "min_recall":
        return make_scorer(
            precision_at_min_recall, min_recall=config.min_recall, pos_label=positive_label
        )
    if config.objective == "cost":
        return make_scorer(
            negative_cost, cost_fp=config.cost_fp, cost_fn=config.cost_fn, pos_label=positive_label
        )
    return make_scorer(f1_score, pos_label=positive_label)


def tune_threshold(
    model: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    folds: BaseCrossValidator,
    config: ThresholdConfig,
    positive_label: str,
    seed: int,
) -> TunedThresholdClassifierCV:
    """The selected pipeline wrapped with the threshold that best serves the objective on
    out-of-fold predictions of the training rows; it never receives a test row or label.
    The fitted model keeps the number of folds, not the splitter: a group split's splitter holds
    every training row's group, and a saved model may hold only types tabpipe trusts."""
    tuner = TunedThresholdClassifierCV(
        clone(model),
        scoring=threshold_scorer(config, positive_label),
        cv=folds,
        refit=True,
        random_state=seed,
    )
    return tuner.fit(X_train, y_train).set_params(cv=folds.get_n_splits())
