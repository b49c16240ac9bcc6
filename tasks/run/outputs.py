"""The one writer of a run directory (the contract in docs/run-directory.md).

A run starts with manifest.json ("running") and config.yaml in its hidden staging directory;
everything else is written at the end, by `RunWriter.complete` (or `RunWriter.fail`), and the
directory is then renamed into place whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tasks.config import RunConfig
from tasks.data.profile import DataProfile
from tasks.data.split import DataSplit
from tasks.data.validate import write_failure_cases
from tasks.evaluation.evaluate import pipeline_of, probability_columns
from tasks.evaluation.explain import Explanations
from tasks.model_selection.audit import forget_training_rows
from tasks.model_selection.search import FamilyResult, SelectionChoice
from tasks.run.model_io import input_columns, model_card, save_model
from tasks.run.plots import (
    write_classification_plots,
    write_explanation_plots,
    write_regression_plots,
)
from tasks.run.report import cv_results_frame, report_html
from tasks.run.rundir import (
    RunDir,
    StageClock,
    package_versions,
    publish_run,
    start_run,
    utc_now,
    write_json,
)


def family_summary(result: FamilyResult) -> dict[str, Any]:
    """A family's search for metrics.json (timings live in the manifest: they never repeat);
    notes (a time budget's skips) only when there are some."""
    notes = {"notes": result.notes} if result.notes else {}
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
        **notes,
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
    *,
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


@dataclass
class TrainingOutputs:
    """Everything a finished training run leaves behind, gathered before one write."""

    metrics: dict[str, Any]
    champion: dict[str, Any]
    results: list[FamilyResult]
    best: FamilyResult
    model: Any
    predictions: pd.DataFrame
    profile: DataProfile
    split: DataSplit
    audit: dict[str, Any]
    explanations: Explanations
    leaderboard: list[dict[str, Any]]


@dataclass
class RunWriter:
    """Owns one run directory: the only code that writes into it."""

    run: RunDir
    manifest: dict[str, Any]
    schema_yaml: str | None = None
    plots: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def begin(cls, config: RunConfig, *, flow_run_id: str | None) -> RunWriter:
        """The staging directory with manifest.json ("running") and the resolved config.yaml."""
        run = start_run(config.runs_dir, config.dataset_name)
        manifest = {
            "status": "running",
            "run_id": run.run_id,
            "config": config.model_dump(mode="json", by_alias=True),
            "seed": config.seed,
            "package_versions": package_versions(),
            "flow_run_id": flow_run_id,
            "started_at": utc_now(),
        }
        write_json(run.path("manifest.json"), manifest)
        # The resolved config, so `tabpipe replay RUN_DIR` (or a person) can re-run exactly this.
        run.path("config.yaml").write_text(yaml.safe_dump(manifest["config"], sort_keys=False))
        return cls(run, manifest)

    def write_schema(self) -> None:
        if self.schema_yaml is not None:
            self.run.path("schema.yaml").write_text(self.schema_yaml, encoding="utf-8")

    def fail(self, error: BaseException) -> Path:
        """Keep what is known (schema, failure cases), mark the run failed, put it in place."""
        self.write_schema()
        failure_cases = getattr(error, "failure_cases", None)
        if isinstance(failure_cases, pd.DataFrame):
            write_failure_cases(failure_cases, self.run.path("validation", "failure_cases.csv"))
        failed = {
            **self.manifest,
            "status": "failed",
            "error": str(error),
            "error_type": type(error).__name__,
            "ended_at": utc_now(),
        }
        write_json(self.run.path("manifest.json"), failed)
        return publish_run(self.run)

    @contextmanager
    def failed_on_error(self) -> Iterator[None]:
        """Any error inside marks the run failed (the manifest says why) and is raised again."""
        try:
            yield
        except BaseException as error:
            self.fail(error)
            raise

    def complete_training(self, outputs: TrainingOutputs, clock: StageClock) -> Path:
        """Every file of a training run, the manifest last; then the directory goes in place."""
        self.write_schema()
        self.plots = write_training_files(self.run, outputs)
        summarised = {**outputs.metrics, "champion": outputs.champion}
        self.manifest.update(
            status="completed",
            champion=outputs.champion,
            ended_at=utc_now(),
            family_seconds={r.family: round(r.fit_seconds, 3) for r in outputs.results},
            family_workers={r.family: r.worker for r in outputs.results if r.worker},
        )
        write_json(self.run.path("champion.json"), outputs.champion)
        write_json(self.run.path("leaderboard.json"), outputs.leaderboard)
        clock.lap("write")
        self.manifest["stage_seconds"] = clock.seconds
        html_text = report_html(
            summarised, self.manifest, asdict(outputs.profile), self.plots, outputs.leaderboard
        )
        return self.finish(html_text)

    def finish(self, report_html_text: str) -> Path:
        """report.html, then manifest.json last, then the rename that makes the run appear."""
        self.run.path("report.html").write_text(report_html_text, encoding="utf-8")
        write_json(self.run.path("manifest.json"), self.manifest)
        final = publish_run(self.run)
        staging = self.run.staging
        self.plots = {name: final / path.relative_to(staging) for name, path in self.plots.items()}
        return final


def write_training_files(run: RunDir, outputs: TrainingOutputs) -> dict[str, Path]:
    """metrics.json, leakage_audit.json, cv_results.csv, predictions.csv, profile.json, plots/,
    models/; returns the plot paths."""
    metrics, profile, split, predictions = (
        outputs.metrics,
        outputs.profile,
        outputs.split,
        outputs.predictions,
    )
    write_json(run.path("metrics.json"), metrics)
    write_json(run.path("leakage_audit.json"), outputs.audit)
    families = [{**family_summary(r), "candidates": r.candidates} for r in outputs.results]
    cv_results = cv_results_frame(families)
    cv_results.to_csv(run.path("cv_results.csv"), index=False)
    write_predictions(predictions, run.path("predictions.csv"))
    write_json(run.path("profile.json"), asdict(profile))
    probabilities = (
        probability_columns(predictions) if profile.task != "regression" else pd.DataFrame()
    )
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
            probabilities,
            profile.classes,
            profile.positive_label,
            cv_results,
            metrics["selection_metric"],
            profile,
        )
    plots.update(
        write_explanation_plots(
            run.path("plots"),
            importance=outputs.explanations.importance,
            y_test=split.y_test,
            probabilities=probabilities,
            classes=profile.classes,
            positive_label=profile.positive_label,
        )
    )
    write_model(run, outputs)
    return plots


def write_model(run: RunDir, outputs: TrainingOutputs) -> None:
    """models/best.joblib without the training rows it saw, and its card models/best.json."""
    model, best, profile = outputs.model, outputs.best, outputs.profile
    forget_training_rows(pipeline_of(model))
    model_path = save_model(model, run.path("models", "best.joblib"))
    card = model_card(
        model_path,
        run_id=run.run_id,
        family=best.family,
        best_params=best.best_params,
        inputs=input_columns(outputs.split.X_train),
        classes=profile.classes,
        positive_label=profile.positive_label,
        threshold=outputs.metrics["test_metrics"].get("decision_threshold"),
        test_metrics=outputs.metrics["test_metrics"],
        versions=package_versions(),
    )
    write_json(run.path("models", "best.json"), card)
