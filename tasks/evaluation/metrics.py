"""The course's metrics, by its definitions, from confusion-matrix counts.

A ratio whose denominator is zero is None, with a note saying which one and why; never a silent 0.
The training flow and `tabpipe metrics` both use these functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

Ratio = float | None


METRIC_ROWS = ("accuracy", "precision", "recall", "specificity", "npv", "f1")
REGRESSION_ROWS = ("mse", "rmse", "mae", "r2")


def safe_ratio(
    numerator: float, denominator: float, name: str, notes: list[str], why: str = ""
) -> Ratio:
    """numerator / denominator, or None with a note (saying why, if given) when it is zero."""
    if denominator == 0:
        notes.append(f"{name} is undefined: {why or 'its denominator is 0'}.")
        return None
    return float(numerator) / float(denominator)


def f1_from(precision: Ratio, recall: Ratio, name: str, notes: list[str]) -> Ratio:
    """2·P·R/(P+R); undefined when either is undefined or both are 0."""
    if precision is None or recall is None:
        notes.append(f"{name} is undefined: precision or recall is undefined.")
        return None
    return safe_ratio(
        2 * precision * recall, precision + recall, name, notes, "precision and recall are both 0"
    )


def mean_of_pair(first: Ratio, second: Ratio, name: str, notes: list[str]) -> Ratio:
    """(a + b) / 2, undefined when either is undefined."""
    if first is None or second is None:
        notes.append(f"{name} is undefined: recall or specificity is undefined.")
        return None
    return (first + second) / 2


def matthews_from(tn: int, fp: int, fn: int, tp: int, notes: list[str]) -> Ratio:
    """(TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN)); undefined when a margin is 0."""
    margins = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return safe_ratio(
        tp * tn - fp * fn,
        math.sqrt(margins),
        "mcc",
        notes,
        "a row or column of the confusion matrix sums to 0",
    )


def binary_metrics(tn: int, fp: int, fn: int, tp: int) -> dict[str, Any]:
    """The course's metrics from the four counts (accuracy, precision, recall, specificity, NPV,
    F1), plus balanced accuracy, FPR, FNR, prevalence and MCC."""
    notes: list[str] = []
    total = tp + fp + tn + fn
    no_positives = "TP+FN = 0 (no row is actually positive)"
    no_negatives = "TN+FP = 0 (no row is actually negative)"
    precision = safe_ratio(
        tp, tp + fp, "precision", notes, "TP+FP = 0 (nothing predicted positive)"
    )
    recall = safe_ratio(tp, tp + fn, "recall", notes, no_positives)
    specificity = safe_ratio(tn, tn + fp, "specificity", notes, no_negatives)
    return {
        "accuracy": safe_ratio(tp + tn, total, "accuracy", notes, "the matrix is empty"),
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "npv": safe_ratio(tn, tn + fn, "npv", notes, "TN+FN = 0 (nothing predicted negative)"),
        "f1": f1_from(precision, recall, "f1", notes),
        "balanced_accuracy": mean_of_pair(recall, specificity, "balanced_accuracy", notes),
        "fpr": safe_ratio(fp, fp + tn, "fpr", notes, no_negatives),
        "fnr": safe_ratio(fn, fn + tp, "fnr", notes, no_positives),
        "prevalence": safe_ratio(tp + fn, total, "prevalence", notes, "the matrix is empty"),
        "mcc": matthews_from(tn, fp, fn, tp, notes),
        "counts": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "notes": notes,
    }


def one_vs_rest_counts(matrix: np.ndarray) -> list[dict[str, int]]:
    """tp, fp, fn, tn of each class of a square confusion matrix (rows true, columns predicted)."""
    total = int(matrix.sum())
    counts = []
    for k in range(matrix.shape[0]):
        tp = int(matrix[k, k])
        fp = int(matrix[:, k].sum()) - tp
        fn = int(matrix[k, :].sum()) - tp
        counts.append({"tp": tp, "fp": fp, "fn": fn, "tn": total - tp - fp - fn})
    return counts


def mean_or_none(values: dict[str, Ratio], name: str, notes: list[str]) -> Ratio:
    """Macro average: the mean over classes, undefined if any class's value is undefined."""
    undefined = [label for label, value in values.items() if value is None]
    if undefined:
        classes = ", ".join(f"'{label}'" for label in undefined)
        notes.append(f"{name} is undefined: it is undefined for class {classes}.")
        return None
    return float(np.mean([v for v in values.values() if v is not None]))


def multiclass_metrics(matrix: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Per-class one-vs-rest metrics, then micro (pooled counts) and macro (mean) averages."""
    counts = one_vs_rest_counts(np.asarray(matrix))
    per_class = {
        label: binary_metrics(c["tn"], c["fp"], c["fn"], c["tp"])
        for label, c in zip(labels, counts, strict=True)
    }
    notes: list[str] = []
    pooled = {key: sum(c[key] for c in counts) for key in ("tp", "fp", "fn")}
    empty = "the matrix is empty"
    micro_precision = safe_ratio(
        pooled["tp"], pooled["tp"] + pooled["fp"], "micro precision", notes, empty
    )
    micro_recall = safe_ratio(
        pooled["tp"], pooled["tp"] + pooled["fn"], "micro recall", notes, empty
    )
    micro = {
        "precision": micro_precision,
        "recall": micro_recall,
        "f1": f1_from(micro_precision, micro_recall, "micro f1", notes),
    }
    macro = {
        name: mean_or_none(
            {label: per_class[label][name] for label in labels}, f"macro {name}", notes
        )
        for name in ("precision", "recall", "specificity", "npv", "f1")
    }
    total = int(np.asarray(matrix).sum())
    return {
        "accuracy": safe_ratio(int(np.trace(matrix)), total, "accuracy", notes, empty),
        "per_class": per_class,
        "support": {label: int(np.asarray(matrix)[k].sum()) for k, label in enumerate(labels)},
        "micro": micro,
        "macro": macro,
        "notes": notes,
    }


def undefined_reason(name: str, notes: list[str]) -> str | None:
    """Why a metric is undefined, from the note its computation left (None if it is defined)."""
    prefix = f"{name} is undefined: "
    return next((n.removeprefix(prefix).rstrip(".") for n in notes if n.startswith(prefix)), None)


def score_or_note(compute: Any, name: str, notes: list[str]) -> Ratio:
    """A curve-based score, or None with the reason (e.g. one class only in y_true)."""
    try:
        return float(compute())
    except ValueError as error:
        notes.append(f"{name} is undefined: {error}")
        return None


def fast_confusion_matrix(y_true: pd.Series, y_pred: pd.Series, labels: list[str]) -> np.ndarray:
    """Same as sklearn's confusion_matrix(labels=...), via category codes: sklearn's label
    handling of strings took 9 s at a million rows."""
    true_codes = pd.Categorical(y_true, categories=labels).codes.astype(np.int64)
    pred_codes = pd.Categorical(y_pred, categories=labels).codes.astype(np.int64)
    known = (true_codes >= 0) & (pred_codes >= 0)
    k = len(labels)
    cells = np.bincount(true_codes[known] * k + pred_codes[known], minlength=k * k)
    return cells.reshape(k, k)


def classification_metrics(
    y_true: pd.Series,
    y_pred: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> dict[str, Any]:
    """Every metric of the run's test report, from labels and per-class probabilities."""
    matrix = fast_confusion_matrix(y_true, y_pred, classes)
    report = multiclass_metrics(matrix, classes)
    report["confusion_matrix"] = {"labels": classes, "matrix": matrix.tolist()}
    # balanced accuracy is the mean recall over the classes present in y_true
    recalls = [v["recall"] for v in report["per_class"].values() if v["recall"] is not None]
    report["balanced_accuracy"] = float(np.mean(recalls)) if recalls else None
    notes = report["notes"]
    if positive_label is not None:
        positive_is = y_true == positive_label
        positive_probability = probabilities[positive_label]
        report["positive_label"] = positive_label
        report["binary"] = report["per_class"][positive_label]
        report["roc_auc"] = score_or_note(
            lambda: roc_auc_score(positive_is, positive_probability), "roc_auc", notes
        )
        report["average_precision"] = score_or_note(
            lambda: average_precision_score(positive_is, positive_probability),
            "average_precision",
            notes,
        )
    else:
        report["roc_auc_ovr_macro"] = score_or_note(
            lambda: roc_auc_score(
                y_true, probabilities[classes].to_numpy(), multi_class="ovr", labels=classes
            ),
            "roc_auc_ovr_macro",
            notes,
        )
    return report


def regression_metrics(y_true: pd.Series, y_pred: pd.Series) -> dict[str, Any]:
    """MSE (the course's loss), RMSE, MAE and R² of the test predictions.

    R² is undefined (None, with a note) when the true values do not vary: its denominator is 0.
    """
    notes: list[str] = []
    mse = float(mean_squared_error(y_true, y_pred))
    residual_sum = float(((y_true - y_pred) ** 2).sum())
    spread = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = None if spread == 0 else float(r2_score(y_true, y_pred))
    if r2 is None:
        safe_ratio(residual_sum, spread, "r2", notes, "the true values do not vary")
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": r2,
        "n": len(y_true),
        "notes": notes,
    }


def headline_metrics(test_metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers a person looks at first: binary metrics of the positive class, or macro ones."""
    if "rmse" in test_metrics:
        return {name: test_metrics[name] for name in REGRESSION_ROWS}
    if "binary" in test_metrics:
        headline = {name: test_metrics["binary"][name] for name in METRIC_ROWS}
        headline["roc_auc"] = test_metrics.get("roc_auc")
        headline["average_precision"] = test_metrics.get("average_precision")
    else:
        headline = {"accuracy": test_metrics["accuracy"]}
        headline.update({f"macro_{k}": v for k, v in test_metrics["macro"].items()})
        headline.update({f"micro_{k}": v for k, v in test_metrics["micro"].items()})
    headline["balanced_accuracy"] = test_metrics.get("balanced_accuracy")
    return headline
