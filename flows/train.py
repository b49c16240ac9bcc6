"""The training flow: load -> validate -> profile -> split -> search (per family) -> select ->
evaluate -> write run. Read it top to bottom; every step is a task over a plain function."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from threadpoolctl import threadpool_limits

from flows.runtime import (
    TrainParameters,
    available_cores,
    current_flow_run_id,
    data_facts,
    generate_run_name,
    parallel_plan,
    resolve_config,
)
from tasks.config import RunConfig
from tasks.data.profile import profile_summary
from tasks.data.split import DataSplit, make_folds
from tasks.model_selection.encoding import feasible_families, plan_encoding
from tasks.model_selection.pipeline import choose_families
from tasks.model_selection.search import (
    FamilyResult,
    build_scorer,
    choose_selection_metric,
    select_best,
)
from tasks.run.artifacts import (
    SearchProgress,
    publish_leaderboard,
    publish_report_link,
    publish_run_summary,
)
from tasks.run.outputs import RunWriter, TrainingOutputs, build_metrics, timed_summaries
from tasks.run.report import leaderboard_rows, report_url, run_summary_markdown
from tasks.run.rundir import StageClock
from tasks.serving.registry import record_champion
from tasks.steps import (
    audit_run,
    choose_schema,
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
def train(params: TrainParameters | None = None, resolved: RunConfig | None = None) -> str:
    """Validate, search and evaluate; returns the directory of the complete run. `resolved` is
    the config the CLI already resolved from `params` (a deployment's run resolves it here)."""
    config = resolved or resolve_config(params or TrainParameters())
    writer = RunWriter.begin(config, flow_run_id=current_flow_run_id())
    clock = StageClock()
    with writer.failed_on_error():
        table = load_data(config.data)
        writer.manifest["data"] = data_facts(table)
        clock.lap("load")
        schema = choose_schema(config, table)
        writer.schema_yaml = schema.to_yaml() or ""
        frame = validate_data(table, schema)
        clock.lap("validate")
        profile = profile_data(frame, config)
        writer.manifest["data"].update(profile_summary(profile, table.notes))
        split = split_data(frame, profile, config)
        selection = choose_selection_metric(profile, config.selection_metric)
        scorer = build_scorer(selection.metric, profile.positive_label)
        folds, cv_note = make_folds(split.y_train, config.split.cv_folds, config.seed, profile.task)
        clock.lap("profile_and_split")
        plan = plan_encoding(profile, split.X_train, config.encoding, folds.get_n_splits())
        families, skipped = feasible_families(
            choose_families(config.models, profile.task),
            len(split.y_train),
            plan.encoded_width,
            explicit=bool(config.models),
        )
        writer.manifest["encoding"] = {**asdict(plan), "skipped_families": skipped}
        writer.manifest["data"]["notes"] += [
            *plan.notes,
            *(f"Model family '{name}' is skipped: {why}." for name, why in skipped.items()),
        ]
        results = search_all_families(families, split, profile, config, selection.metric, folds)
        best = select_best(results)
        clock.lap("search")
        model, threshold = finalise_model(best, split, profile, config, folds)
        predictions, test_metrics = evaluate_model(model, split, profile, threshold, config.seed)
        audit = audit_run(model, split, folds, tuned=threshold is not None)
        explanations = explain_model(model, split, predictions, profile, scorer, config.seed)
        clock.lap("evaluate")
        metrics = build_metrics(
            dataset=config.dataset_name,
            profile=profile,
            selection=selection,
            results=results,
            best=best,
            test_metrics=test_metrics,
            split=split,
            cv_folds=folds.get_n_splits(),
            cv_note=cv_note,
            explanations=explanations.summary,
            no_leakage_found=audit["no_leakage_found"],
        )
        # The champion decision depends on earlier runs, not on this run's inputs: it stays out
        # of metrics.json (byte-identical for the same data, config and seed).
        champion = compare_with_champion(config, writer.run.run_id, metrics, predictions, split)
        leaderboard = leaderboard_rows(timed_summaries(results))
        outputs = TrainingOutputs(
            metrics=metrics,
            champion=champion,
            results=results,
            best=best,
            model=model,
            predictions=predictions,
            profile=profile,
            split=split,
            audit=audit,
            explanations=explanations,
            leaderboard=leaderboard,
        )
        final = writer.complete_training(outputs, clock)
    record_champion(config.runs_dir, champion)
    publish_leaderboard(leaderboard, config.dataset_name)
    publish_run_summary(
        run_summary_markdown({**metrics, "champion": champion}, final, writer.plots, SUMMARY_PLOTS),
        config.dataset_name,
    )
    publish_report_link(report_url(final), final)
    get_run_logger().info("Run complete: %s (best %s)", final, best.family)
    return str(final)
