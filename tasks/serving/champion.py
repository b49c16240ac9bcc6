"""Does a new run beat its dataset's champion by more than the noise?

Both models predict the new run's test rows; a paired bootstrap resamples those rows (the same
resample for both models) and recomputes the selection metric for each. The new run becomes
champion only when the interval of the difference (new - champion) lies above 0.

The resampled metrics are tasks/evaluation/paired.py's: a resample is a count per row, so a
whole block of resamples takes a few matrix operations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.errors import ModelIntegrityError, RegistryError
from tasks.evaluation.evaluate import probability_columns
from tasks.evaluation.paired import ScoreFunction, metric_on_resamples, paired_difference
from tasks.run.model_io import MODEL_FILE_NAME, load_checked_model
from tasks.run.rundir import PARTIAL_SUFFIX
from tasks.serving.answers import predict_with_card
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


def resamples_for(n_rows: int, requested: int) -> int:
    """Fewer resamples for very large test sets (their intervals are narrow anyway), so the
    comparison costs at most about MAX_RESAMPLED_ROWS row draws: 1000 up to 20k rows."""
    return max(MIN_BOOTSTRAP, min(requested, MAX_RESAMPLED_ROWS // max(n_rows, 1)))


def metric_function(
    metric: str,
    y_true: pd.Series,
    model_output: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> ScoreFunction:
    """weights (resamples, rows) -> the metric per resample, for one model's test output
    (column y_pred, and one probability column per class, named by class, for a classifier)."""
    return metric_on_resamples(
        metric,
        y_true,
        model_output["y_pred"],
        classes=classes,
        positive_label=positive_label,
        positive_score=(
            model_output[positive_label].to_numpy(dtype=float)
            if positive_label is not None and positive_label in model_output
            else None
        ),
    )


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
    paired = paired_difference(
        score_new,
        score_champion,
        n_rows,
        n_boot=n_boot,
        seed=seed,
        confidence=CONFIDENCE,
        groups=groups,
    )
    return {
        "new_score": paired["a"],
        "champion_score": paired["b"],
        "difference": paired["difference"],
        "ci_low": paired["ci_low"],
        "ci_high": paired["ci_high"],
        "confidence": CONFIDENCE,
        "n_boot": n_boot,
        "n_valid_resamples": paired["n_valid_resamples"],
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


def champion_answers(runs_dir: Path, champion: str, X_test: pd.DataFrame) -> pd.DataFrame:
    """The champion model's answers for the new run's test rows, once its file passed the checks
    (signature, sha256, trusted types); a broken file raises ModelIntegrityError."""
    model, card = load_checked_model(runs_dir / champion / "models" / MODEL_FILE_NAME, runs_dir)
    return predict_with_card(model, card, X_test).reset_index(drop=True)


def champion_answers_or_error(
    runs_dir: Path, champion: str, X_test: pd.DataFrame
) -> pd.DataFrame | Exception:
    """champion_answers in a CV worker: a damaged champion's error comes back as the value, for
    the champion decision to report (a job that raises ends joblib's pool, and every job in
    flight there with it: the model file, the plots)."""
    try:
        return champion_answers(runs_dir, champion, X_test)
    except Exception as error:
        return error


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
    answers: Callable[[str], pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """The champion decision for a new run (applied to the registry by record_champion).
    split_key (data_sha256, seed, test_size) lets the decision say when the splits differ;
    groups (of the test rows, under split.groups) make the bootstrap resample whole groups;
    answers: the champion's champion_answers for X_test by its run id, if made elsewhere."""
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
    classes, positive = list(metrics["classes"] or []), metrics.get("positive_label")
    kind = str if classes else float  # regression: values, not labels
    y_true = predictions["y_true"].astype(kind).reset_index(drop=True)
    new_output = probability_columns(predictions).assign(y_pred=predictions["y_pred"].astype(kind))
    try:
        champion_output = (
            answers(champion) if answers else champion_answers(runs_dir, champion, X_test)
        )
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
