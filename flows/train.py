"""The training flow: load -> validate -> profile -> split -> search (per family) -> select ->
evaluate -> write run. Read it top to bottom; every step is a task over a plain function."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
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
from tasks.config import ConfigError, RunConfig, load_config
from tasks.data import LoadedTable
from tasks.outputs import build_metrics, timed_summaries, write_report, write_run_files
from tasks.pipeline import choose_families
from tasks.profile import profile_summary
from tasks.registry import record_champion
from tasks.report import leaderboard_rows, report_url, run_summary_markdown
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
from tasks.search import FamilyResult, build_scorer, choose_selection_metric, select_best
from tasks.split import DataSplit, make_folds
from tasks.steps import (
    audit_run,
    compare_with_champion,
    evaluate_model,
    explain_model,
    finalise_model,
    load_data,
    profile_data,
    search_model_family,
    split_data,
    validate_data,
)

PROCESS_POOL_MIN_ROWS = 5_000
SUMMARY_PLOTS = ("confusion_matrix", "roc", "precision_recall", "predicted_vs_actual", "residuals")


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
    config = load_config(
        Path(params.config) if params.config else None,
        overrides=params.overrides,
        data=Path(params.data) if params.data else None,
        target=params.target,
    )
    if config.task == "clustering":
        source = params.config or "command line"
        raise ConfigError(f"{source}: task 'clustering' runs with `tabpipe segment`.")
    return config


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
    # The resolved config, so `tabpipe replay RUN_DIR` (or a person) can re-run exactly this.
    run.path("config.yaml").write_text(yaml.safe_dump(manifest["config"], sort_keys=False))
    return manifest


def data_facts(table: LoadedTable) -> dict[str, Any]:
    """What the manifest records of the data file, to tell later whether it changed."""
    return {
        "path": str(table.path),
        "sha256": table.sha256,
        "rows": table.frame.shape[0],
        "columns": table.frame.shape[1],
        "notes": table.notes,
    }


def search_all_families(
    families: list[str], split: DataSplit, profile: Any, config: RunConfig, metric: str, folds: Any
) -> list[FamilyResult]:
    """One concurrent task per family; the progress bar moves as each one finishes."""
    cores = config.n_jobs or available_cores()
    _, threads_per_family = parallel_plan(len(families), cores)
    # Starting a pool of worker processes costs ~3 s: small data runs its CV in the task threads.
    cv_jobs = cores if len(split.y_train) >= PROCESS_POOL_MIN_ROWS else 1
    progress = SearchProgress(len(families), config.dataset_name)
    with threadpool_limits(limits=threads_per_family):
        futures = [
            search_model_family.submit(
                family, split, profile, config, metric, folds, cv_jobs, threads_per_family
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
        manifest["data"] = data_facts(table)
        clock.lap("load")
        frame = validate_data(table, config, run)
        clock.lap("validate")
        profile = profile_data(frame, config)
        manifest["data"].update(profile_summary(profile, table.notes))
        split = split_data(frame, profile, config)
        selection = choose_selection_metric(profile, config.selection_metric)
        scorer = build_scorer(selection.metric, profile.positive_label)
        folds, cv_note = make_folds(split.y_train, config.split.cv_folds, config.seed, profile.task)
        clock.lap("profile_and_split")
        families = choose_families(config.models, profile.task)
        results = search_all_families(families, split, profile, config, selection.metric, folds)
        best = select_best(results)
        clock.lap("search")
        model, threshold = finalise_model(best, split, profile, config, folds)
        predictions, test_metrics = evaluate_model(model, split, profile, threshold, config.seed)
        audit = audit_run(model, split, folds, tuned=threshold is not None)
        explanations, explanation_plots = explain_model(
            model, split, predictions, profile, scorer, config.seed, run.path("plots")
        )
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
            explanations,
            audit["no_leakage_found"],
        )
        plots = write_run_files(
            run, metrics, results, model, best, predictions, profile, split, audit
        )
        plots.update(explanation_plots)
        # The champion decision depends on earlier runs, not on this run's inputs: it stays out
        # of metrics.json (byte-identical for the same data, config and seed).
        champion = compare_with_champion(config, run, metrics, predictions, split)
        write_json(run.path("champion.json"), champion)
        manifest["champion"] = champion
        summarised = {**metrics, "champion": champion}
        leaderboard = leaderboard_rows(timed_summaries(results))
        manifest.update(
            status="completed",
            ended_at=utc_now(),
            stage_seconds=clock.seconds,
            family_seconds={r.family: round(r.fit_seconds, 3) for r in results},
            family_workers={r.family: r.worker for r in results if r.worker},
        )
        write_report(run, summarised, manifest, profile, plots, leaderboard)
        write_json(run.path("leaderboard.json"), leaderboard)
        publish_leaderboard(leaderboard, config.dataset_name)
        publish_run_summary(
            run_summary_markdown(summarised, run.final, plots, SUMMARY_PLOTS),
            config.dataset_name,
        )
        clock.lap("write")
        manifest["stage_seconds"] = clock.seconds
        write_json(run.path("manifest.json"), manifest)
        final = publish_run(run)
    record_champion(config.runs_dir, champion)
    publish_report_link(report_url(final), final)
    get_run_logger().info("Run complete: %s (best %s)", final, best.family)
    return str(final)
