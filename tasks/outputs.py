"""Writing the run directory's files (the contract in DESIGN.md)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.audit import forget_training_rows
from tasks.evaluate import pipeline_of, probability_columns
from tasks.model_io import input_columns, model_card, save_model
from tasks.plots import write_classification_plots, write_regression_plots
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


def regression_facts(profile: DataProfile) -> dict[str, Any]:
    """For a regression: the target's spread (to read RMSE against) and rows without a target."""
    if profile.task != "regression":
        return {}
    return {
        "target_summary": profile.target_summary,
        "dropped_target_rows": profile.dropped_target_rows,
    }


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
    explanations: dict[str, Any],
    no_leakage_found: bool,
) -> dict[str, Any]:
    """metrics.json: what was compared, what won and why, and how it scored on the test set."""
    return {
        "dataset": dataset,
        "task": profile.task,
        "target": profile.target,
        "classes": profile.classes,
        "positive_label": profile.positive_label,
        **regression_facts(profile),
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
        "calibration_and_importance": explanations,
        "leakage_audit": {"no_leakage_found": no_leakage_found, "details": "leakage_audit.json"},
    }


def write_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    # repr-precision floats, so metrics recomputed from the file equal metrics.json exactly
    predictions.to_csv(path, index=False, float_format="%.17g")
    return path


def write_run_files(
    run: RunDir,
    metrics: dict[str, Any],
    results: list[FamilyResult],
    model: Any,
    family: FamilyResult,
    predictions: pd.DataFrame,
    profile: DataProfile,
    split: DataSplit,
    audit: dict[str, Any],
) -> dict[str, Path]:
    """metrics.json, leakage_audit.json, cv_results.csv, predictions.csv, plots/, models/;
    returns the plot paths."""
    write_json(run.path("metrics.json"), metrics)
    write_json(run.path("leakage_audit.json"), audit)
    families = [{**family_summary(r), "candidates": r.candidates} for r in results]
    cv_results = cv_results_frame(families)
    cv_results.to_csv(run.path("cv_results.csv"), index=False)
    write_predictions(predictions, run.path("predictions.csv"))
    write_json(run.path("profile.json"), asdict(profile))
    if profile.task == "regression":
        plots = write_regression_plots(
            run.path("plots"),
            predictions,
            split.y_train,
            cv_results,
            metrics["selection_metric"],
            profile,
        )
    else:
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
    forget_training_rows(pipeline_of(model))
    model_path = save_model(model, run.path("models", "best.joblib"))
    card = model_card(
        model_path,
        run.run_id,
        family.family,
        family.best_params,
        input_columns(split.X_train),
        profile.classes,
        profile.positive_label,
        metrics["test_metrics"].get("decision_threshold"),
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
