"""Does a new run beat its dataset's champion by more than the noise?

Both models predict the new run's test rows; a paired bootstrap resamples those rows (the same
resample for both models) and recomputes the selection metric for each. The new run becomes
champion only when the interval of the difference (new - champion) lies above 0.

A resample is a count per row (how often the row was drawn), so every metric is a weighted count
over the original rows and a whole block of resamples takes a few matrix operations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.errors import ModelIntegrityError, RegistryError
from tasks.evaluation.evaluate import probability_columns
from tasks.run.model_io import MODEL_FILE_NAME, load_checked_model
from tasks.run.rundir import PARTIAL_SUFFIX
from tasks.serving.predict import predict_with_card
from tasks.serving.registry import (
    champion_run_id,
    crown,
    locked_registry,
    read_json_or_none,
    run_dataset,
    selection_score,
)

N_BOOTSTRAP = 1000
MIN_BOOTSTRAP = 200
MAX_RESAMPLED_ROWS = 20_000_000
CONFIDENCE = 0.95
# Rows x resamples held in memory at once (float32): about 40 MB per array.
BLOCK_CELLS = 10_000_000
RANKING_METRICS = ("roc_auc", "average_precision")
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_micro")


def resamples_for(n_rows: int, requested: int) -> int:
    """Fewer resamples for very large test sets (their intervals are narrow anyway), so the
    comparison costs at most about MAX_RESAMPLED_ROWS row draws: 1000 up to 20k rows."""
    return max(MIN_BOOTSTRAP, min(requested, MAX_RESAMPLED_ROWS // max(n_rows, 1)))


def bootstrap_weight_blocks(
    n_rows: int, n_boot: int, seed: int, groups: np.ndarray | None = None
) -> list[np.ndarray]:
    """Resample counts per row, (resamples, rows), in blocks that fit in memory; seeded.
    float32 holds the counts exactly (they never exceed n_rows) at half the memory.
    With groups (split.groups), whole groups are drawn: a row counts as often as its group."""
    rng = np.random.default_rng(seed)
    codes = None if groups is None else pd.factorize(groups)[0]
    n_units = n_rows if codes is None else int(codes.max()) + 1
    per_block = max(1, BLOCK_CELLS // max(n_rows, 1))
    blocks = []
    for start in range(0, n_boot, per_block):
        drawn = rng.integers(0, n_units, size=(min(per_block, n_boot - start), n_units))
        counts = np.stack([np.bincount(row, minlength=n_units) for row in drawn])
        blocks.append((counts if codes is None else counts[:, codes]).astype(np.float32))
    return blocks


def weighted_ranking_scores(
    positive: np.ndarray, score: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """ROC-AUC and average precision per row of weights (NaN when a class is absent).

    Rows sorted by score, descending; rows with tied scores form one threshold group. With tp and
    n the cumulative positive and total weight at each group's end:
    AP = sum(new positives x precision) / P; AUC = sum(new positives x negatives ranked below,
    ties counted half) / (P x N): the same numbers as sklearn's curves."""
    order = np.argsort(-score, kind="mergesort")
    sorted_score = score[order]
    w = weights[:, order]
    ends = np.r_[np.flatnonzero(np.diff(sorted_score)), len(score) - 1]
    tp = np.cumsum(w * positive[order], axis=1)[:, ends].astype(float)
    seen = np.cumsum(w, axis=1)[:, ends].astype(float)
    del w
    fp = seen - tp
    n_pos, n_neg = tp[:, -1], fp[:, -1]
    new_pos = np.diff(tp, axis=1, prepend=0.0)
    new_neg = np.diff(fp, axis=1, prepend=0.0)
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        average_precision = np.sum(new_pos * precision, axis=1) / n_pos
        below = n_neg[:, None] - fp + new_neg / 2
        roc_auc = np.sum(new_pos * below, axis=1) / (n_pos * n_neg)
    return {
        "roc_auc": np.where((n_pos == 0) | (n_neg == 0), np.nan, roc_auc),
        "average_precision": np.where(n_pos == 0, np.nan, average_precision),
    }


def weighted_label_scores(
    true_index: np.ndarray,
    pred_index: np.ndarray,
    n_classes: int,
    positive: int | None,
    weights: np.ndarray,
) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and F1 (binary, macro, micro) per row of weights."""
    true_onehot = np.eye(n_classes)[true_index]
    pred_onehot = np.eye(n_classes)[pred_index]
    tp = weights @ (true_onehot * pred_onehot)
    support = weights @ true_onehot
    predicted = weights @ pred_onehot
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample may hold no row of a class
        accuracy = tp.sum(axis=1) / weights.sum(axis=1)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
        scores = {
            "accuracy": accuracy,
            "f1_micro": accuracy,
            "balanced_accuracy": np.nanmean(recall, axis=1),
            "f1_macro": np.nanmean(f1, axis=1),
        }
    if positive is not None:
        scores["f1"] = f1[:, positive]
    return scores


ScoreFunction = Callable[[np.ndarray], np.ndarray]


def metric_function(
    metric: str,
    y_true: pd.Series,
    model_output: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> ScoreFunction:
    """weights (resamples, rows) -> the metric per resample, for one model's test output
    (columns y_pred and one probability column per class, named by class)."""
    if (metric in RANKING_METRICS or metric == "f1") and positive_label is None:
        raise ValueError(f"{metric} needs a binary task with a positive label.")
    if metric in RANKING_METRICS:
        positive = (y_true == positive_label).to_numpy()
        score = model_output[positive_label].to_numpy(dtype=float)
        return lambda w: weighted_ranking_scores(positive, score, w)[metric]
    if metric not in LABEL_METRICS:
        raise ValueError(f"selection metric '{metric}' cannot be bootstrapped.")
    lookup = {label: k for k, label in enumerate(classes)}
    true_index = y_true.map(lookup).to_numpy(dtype=int)
    pred_index = model_output["y_pred"].map(lookup).to_numpy(dtype=int)
    positive_index = lookup.get(positive_label) if positive_label is not None else None

    def label_metric(weights: np.ndarray) -> np.ndarray:
        scores = weighted_label_scores(
            true_index, pred_index, len(classes), positive_index, weights
        )
        return scores[metric]

    return label_metric


def paired_bootstrap(
    score_new: ScoreFunction,
    score_champion: ScoreFunction,
    n_rows: int,
    n_boot: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Observed scores, their difference, and the percentile interval of the difference
    (resampling whole groups when given)."""
    observed = np.ones((1, n_rows))
    new, champion = float(score_new(observed)[0]), float(score_champion(observed)[0])
    blocks = bootstrap_weight_blocks(n_rows, n_boot, seed, groups)
    differences = np.concatenate([score_new(w) - score_champion(w) for w in blocks])
    valid = differences[np.isfinite(differences)]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(valid, [tail, 100 - tail]) if valid.size else (np.nan, np.nan)
    return {
        "new_score": new,
        "champion_score": champion,
        "difference": new - champion,
        "ci_low": float(low),
        "ci_high": float(high),
        "confidence": CONFIDENCE,
        "n_boot": n_boot,
        "n_valid_resamples": int(valid.size),
        "n_rows": n_rows,
        "seed": seed,
        **({"resampled": "groups"} if groups is not None else {}),
    }


def outcome_of(comparison: dict[str, Any]) -> tuple[bool, str, str]:
    """(becomes champion, outcome, one-sentence reason) from the bootstrap numbers."""
    low, high = comparison["ci_low"], comparison["ci_high"]
    interval = f"{CONFIDENCE:.0%} interval of the difference [{low:.4f}, {high:.4f}]"
    if low > 0:
        return True, "beats-champion", f"beats the champion: {interval} lies above 0."
    if high < 0:
        return False, "worse", f"worse than the champion: {interval} lies below 0."
    return False, "within-noise", f"not better than the champion beyond noise: {interval}."


def split_note(champion_dir: Path, split_key: dict[str, Any]) -> str | None:
    """A warning when the champion was trained on another split (other data, seed or test
    share): some of these test rows may be its training rows, which favours the champion."""
    manifest = read_json_or_none(champion_dir / "manifest.json") or {}
    config = manifest.get("config") or {}
    champion_key = {
        "data_sha256": (manifest.get("data") or {}).get("sha256"),
        "seed": manifest.get("seed"),
        "test_size": (config.get("split") or {}).get("test_size"),
        "split_groups": (config.get("split") or {}).get("groups"),
        "split_time": (config.get("split") or {}).get("time"),
    }
    differing = [name for name, value in split_key.items() if champion_key.get(name) != value]
    if not differing:
        return None
    return (
        f"the champion was trained with another {', '.join(differing)}: some of these test rows "
        "may be its training rows, which favours the champion."
    )


def judge_against_champion(
    runs_dir: Path,
    dataset: str,
    run_id: str,
    metrics: dict[str, Any],
    predictions: pd.DataFrame,
    X_test: pd.DataFrame,
    seed: int,
    split_key: dict[str, Any] | None = None,
    n_boot: int = N_BOOTSTRAP,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """The champion decision for a new run (applied to the registry by record_champion).
    split_key (data_sha256, seed, test_size) lets the decision say when the splits differ;
    groups (of the test rows, under split.groups) make the bootstrap resample whole groups."""
    metric = metrics["selection_metric"]
    decision: dict[str, Any] = {"dataset": dataset, "run_id": run_id, "metric": metric}
    try:
        champion = champion_run_id(runs_dir, dataset)
    except RegistryError as error:  # a broken registry must not sink the training run
        return {
            **decision,
            "becomes_champion": False,
            "outcome": "not-comparable",
            "compared_with": None,
            "reason": f"no champion comparison: {error}",
        }
    decision["compared_with"] = champion
    new_value = selection_score(metrics)
    if new_value is None:
        return {
            **decision,
            "becomes_champion": False,
            "outcome": "not-good",
            "reason": f"test {metric} is undefined, so the run cannot become champion.",
        }
    if champion is None or not (runs_dir / champion).is_dir():
        reason = (
            "the first good run of this dataset."
            if champion is None
            else (f"the champion run '{champion}' no longer exists.")
        )
        return {
            **decision,
            "becomes_champion": True,
            "outcome": "first-champion",
            "new_score": new_value,
            "reason": reason,
        }
    y_true = predictions["y_true"].astype(str).reset_index(drop=True)
    new_output = probability_columns(predictions).assign(y_pred=predictions["y_pred"].astype(str))
    classes, positive = list(metrics["classes"]), metrics.get("positive_label")
    try:
        model, card = load_checked_model(runs_dir / champion / "models" / MODEL_FILE_NAME, runs_dir)
        champion_output = predict_with_card(model, card, X_test).reset_index(drop=True)
        score_new = metric_function(metric, y_true, new_output, classes, positive)
        score_champion = metric_function(metric, y_true, champion_output, classes, positive)
    except (ModelIntegrityError, ValueError, KeyError) as error:
        return {
            **decision,
            "becomes_champion": False,
            "outcome": "not-comparable",
            "reason": f"could not compare with champion '{champion}': {error}",
        }
    comparison = paired_bootstrap(
        score_new, score_champion, len(y_true), resamples_for(len(y_true), n_boot), seed, groups
    )
    becomes, outcome, reason = outcome_of(comparison)
    note = split_note(runs_dir / champion, split_key) if split_key else None
    return {
        **decision,
        **({"note": note} if note else {}),
        **comparison,
        "becomes_champion": becomes,
        "outcome": outcome,
        "reason": reason,
    }


def promote_run(run_dir: Path, runs_dir: Path) -> dict[str, Any]:
    """Make a completed run (inside runs_dir, its model intact) its dataset's champion by hand."""
    manifest = read_json_or_none(run_dir / "manifest.json") or {}
    metrics = read_json_or_none(run_dir / "metrics.json")
    if (
        manifest.get("status") != "completed"
        or metrics is None
        or run_dir.name.endswith(PARTIAL_SUFFIX)
    ):
        raise RegistryError(
            f"Run '{run_dir}' did not complete; only a completed run can be promoted."
        )
    if run_dir.resolve().parent != runs_dir.resolve():
        raise RegistryError(f"Run '{run_dir}' is not a run directory inside '{runs_dir}'.")
    load_checked_model(run_dir / "models" / MODEL_FILE_NAME, runs_dir)
    dataset = run_dataset(manifest, metrics)
    with locked_registry(runs_dir) as registry:
        crown(registry, dataset, run_dir.name, "promoted by hand (tabpipe promote).", {})
    return {"dataset": dataset, "run_id": run_dir.name}
