"""The training flow: load -> validate -> profile -> split -> search (per family) -> select ->
evaluate -> write run. Read it top to bottom; every step is a task over a plain function."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field
from threadpoolctl import threadpool_limits

from tasks.artifacts import (
    SearchProgress,
    publish_leaderboard,
    publish_report_link,
    publish_run_summary,
)
from tasks.config import RunConfig, load_config
from tasks.outputs import build_metrics, timed_summaries, write_report, write_run_files
from tasks.pipeline import DEFAULT_FAMILIES
from tasks.report import leaderboard_rows, run_summary_markdown
from tasks.rundir import (
    RunDir,
    StageClock,
    failed_run_on_error,
    package_versions,
    publish_run,
    start_run,
    utc_now,
    write_json,
)
from tasks.search import FamilyResult, choose_selection_metric, select_best
from tasks.split import DataSplit, make_folds
from tasks.steps import (
    evaluate_best,
    load_data,
    profile_data,
    search_model_family,
    split_data,
    validate_data,
)

SUMMARY_PLOTS = ("confusion_matrix", "roc", "precision_recall")


class TrainParameters(BaseModel):
    """What the Prefect UI's run form asks for: a config, or a data file and its target."""

    config: str | None = Field(None, description="A YAML config, e.g. configs/penguins.yaml.")
    data: str | None = Field(None, description="A CSV or Parquet file (when no config is given).")
    target: str | None = Field(None, description="The column to predict (with data).")
    overrides: list[str] = Field(default_factory=list, description="key=value config overrides.")


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_plan(n_families: int, cores: int) -> tuple[int, int]:
    """Families at once and the threads each may use, so the cores are busy but never
    oversubscribed; their CV fits share one pool of `cores` worker processes (joblib's)."""
    concurrent = max(1, min(cores, n_families))
    return concurrent, max(1, cores // concurrent)


def resolve_config(params: TrainParameters) -> RunConfig:
    return load_config(
        Path(params.config) if params.config else None,
        overrides=params.overrides,
        data=Path(params.data) if params.data else None,
        target=params.target,
    )


def generate_run_name() -> str:
    """Flow-run names say what ran: the dataset and the time."""
    params = flow_run.parameters.get("params") or {}
    if isinstance(params, BaseModel):
        params = params.model_dump()
    source = params.get("config") or params.get("data") or "train"
    return f"{Path(source).stem}-{flow_run.scheduled_start_time:%Y%m%d-%H%M%S}"


def begin_manifest(config: RunConfig, run: RunDir) -> dict[str, Any]:
    manifest = {
        "status": "running",
        "run_id": run.run_id,
        "config": config.model_dump(mode="json", by_alias=True),
        "seed": config.seed,
        "package_versions": package_versions(),
        "flow_run_id": str(flow_run.id) if flow_run.id else None,
        "started_at": utc_now(),
    }
    write_json(run.path("manifest.json"), manifest)
    return manifest


def search_all_families(
    families: list[str], split: DataSplit, profile: Any, config: RunConfig, metric: str, folds: Any
) -> list[FamilyResult]:
    """One concurrent task per family; the progress bar moves as each one finishes."""
    cores = config.n_jobs or available_cores()
    _, threads_per_family = parallel_plan(len(families), cores)
    progress = SearchProgress(len(families), config.dataset_name)
    with threadpool_limits(limits=threads_per_family):
        futures = [
            search_model_family.submit(
                family, split, profile, config, metric, folds, cores, threads_per_family
            )
            for family in families
        ]
        for future in as_completed(futures):
            progress.advance(future.result().family)
    return [future.result() for future in futures]


@flow(
    name="train",
    flow_run_name=generate_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=available_cores()),  # type: ignore[arg-type]
    log_prints=True,
)
def train(params: TrainParameters | None = None) -> str:
    """Validate, search and evaluate; returns the directory of the complete run."""
    config = resolve_config(params or TrainParameters())
    run = start_run(config.runs_dir, config.dataset_name)
    manifest = begin_manifest(config, run)
    clock = StageClock()
    with failed_run_on_error(run, manifest):
        table = load_data(config.data)
        manifest["data"] = {
            "path": str(table.path),
            "sha256": table.sha256,
            "rows": table.frame.shape[0],
            "columns": table.frame.shape[1],
            "notes": table.notes,
        }
        clock.lap("load")
        frame = validate_data(table, config, run)
        clock.lap("validate")
        profile = profile_data(frame, config)
        split = split_data(frame, profile, config)
        selection = choose_selection_metric(profile, config.selection_metric)
        folds, cv_note = make_folds(split.y_train, config.split.cv_folds, config.seed)
        clock.lap("profile_and_split")
        families = list(config.models or DEFAULT_FAMILIES)
        results = search_all_families(families, split, profile, config, selection.metric, folds)
        best = select_best(results)
        clock.lap("search")
        predictions, test_metrics = evaluate_best(best, split, profile)
        clock.lap("evaluate")
        metrics = build_metrics(
            config.dataset_name,
            profile,
            selection,
            results,
            best,
            test_metrics,
            split,
            folds.get_n_splits(),
            cv_note,
        )
        plots = write_run_files(run, metrics, results, best, predictions, profile, split)
        manifest.update(
            status="completed",
            ended_at=utc_now(),
            stage_seconds=clock.seconds,
            family_seconds={r.family: round(r.fit_seconds, 3) for r in results},
            family_workers={r.family: r.worker for r in results if r.worker},
        )
        leaderboard = leaderboard_rows(timed_summaries(results))
        write_report(run, metrics, manifest, profile, plots, leaderboard)
        write_json(run.path("leaderboard.json"), leaderboard)
        publish_leaderboard(leaderboard, config.dataset_name)
        publish_run_summary(
            run_summary_markdown(metrics, run.final, plots, SUMMARY_PLOTS), config.dataset_name
        )
        clock.lap("write")
        manifest["stage_seconds"] = clock.seconds
        write_json(run.path("manifest.json"), manifest)
        final = publish_run(run)
    publish_report_link((final / "report.html").as_uri(), final)
    get_run_logger().info("Run complete: %s (best %s)", final, best.family)
    return str(final)
