"""Writing the run directory's files (the contract in DESIGN.md)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.evaluate import probability_columns
from tasks.model_io import input_columns, model_card, save_model
from tasks.plots import write_classification_plots
from tasks.profile import DataProfile
from tasks.report import cv_results_frame, report_html
from tasks.rundir import RunDir, package_versions, write_json
from tasks.search import FamilyResult, SelectionChoice
from tasks.split import DataSplit


def family_summary(result: FamilyResult) -> dict[str, Any]:
    """A family's search for metrics.json (timings live in the manifest: they never repeat)."""
    return {
        "family": result.family,
        "status": result.status,
        "error": result.error,
        "best_params": result.best_params,
        "best_score": result.best_score,
        "best_std": result.best_std,
        "candidates": [
            {k: v for k, v in row.items() if k != "mean_fit_seconds"} for row in result.candidates
        ],
    }


def timed_summaries(results: list[FamilyResult]) -> list[dict[str, Any]]:
    """Family summaries with their fit seconds, for the leaderboard (not for metrics.json)."""
    return [{**family_summary(r), "fit_seconds": r.fit_seconds} for r in results]


def build_metrics(
    dataset: str,
    profile: DataProfile,
    selection: SelectionChoice,
    results: list[FamilyResult],
    best: FamilyResult,
    test_metrics: dict[str, Any],
    split: DataSplit,
    cv_folds: int,
    cv_note: str | None,
) -> dict[str, Any]:
    """metrics.json: what was compared, what won and why, and how it scored on the test set."""
    return {
        "dataset": dataset,
        "task": profile.task,
        "target": profile.target,
        "classes": profile.classes,
        "positive_label": profile.positive_label,
        "selection_metric": selection.metric,
        "selection_reason": selection.reason,
        "cv_folds": cv_folds,
        "cv_note": cv_note,
        "n_train": len(split.y_train),
        "n_test": len(split.y_test),
        "dropped_target_rows": profile.dropped_target_rows,
        "dropped_columns": profile.dropped_columns,
        "families": [family_summary(r) for r in results],
        "best_model": {
            "family": best.family,
            "params": best.best_params,
            "cv_score": best.best_score,
            "cv_std": best.best_std,
        },
        "test_metrics": test_metrics,
    }


def write_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    # repr-precision floats, so metrics recomputed from the file equal metrics.json exactly
    predictions.to_csv(path, index=False, float_format="%.17g")
    return path


def write_run_files(
    run: RunDir,
    metrics: dict[str, Any],
    results: list[FamilyResult],
    best: FamilyResult,
    predictions: pd.DataFrame,
    profile: DataProfile,
    split: DataSplit,
) -> dict[str, Path]:
    """metrics.json, cv_results.csv, predictions.csv, plots/, models/; returns the plot paths."""
    write_json(run.path("metrics.json"), metrics)
    families = [{**family_summary(r), "candidates": r.candidates} for r in results]
    cv_results = cv_results_frame(families)
    cv_results.to_csv(run.path("cv_results.csv"), index=False)
    write_predictions(predictions, run.path("predictions.csv"))
    write_json(run.path("profile.json"), asdict(profile))
    plots = write_classification_plots(
        run.path("plots"),
        predictions,
        probability_columns(predictions),
        profile.classes,
        profile.positive_label,
        cv_results,
        metrics["selection_metric"],
        profile,
    )
    assert best.estimator is not None
    model_path = save_model(best.estimator, run.path("models", "best.joblib"))
    card = model_card(
        model_path,
        run.run_id,
        best.family,
        best.best_params,
        input_columns(split.X_train),
        profile.classes,
        profile.positive_label,
        None,
        metrics["test_metrics"],
        package_versions(),
    )
    write_json(run.path("models", "best.json"), card)
    return plots


def write_report(
    run: RunDir,
    metrics: dict[str, Any],
    manifest: dict[str, Any],
    profile: DataProfile,
    plots: dict[str, Path],
    leaderboard: list[dict[str, Any]],
) -> Path:
    path = run.path("report.html")
    html_text = report_html(metrics, manifest, asdict(profile), plots, leaderboard)
    path.write_text(html_text, encoding="utf-8")
    return path
