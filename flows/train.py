"""The training flow: load -> validate -> profile -> split -> search (per family) -> select ->
evaluate -> write run. Read it top to bottom; every step is a task over a plain function."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict
from typing import Any

from imblearn.pipeline import Pipeline
from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from flows.runtime import (
    TrainParameters,
    available_cores,
    current_flow_run_id,
    data_facts,
    dataset_history,
    generate_run_name,
    parallel_plan,
    resolve_config,
    stop_at_once_on_sigterm,
    untagged_task_runs,
)
from flows.worker_work import start_worker_work
from tasks.config import RunConfig
from tasks.data.header import has_rows
from tasks.data.profile import profile_summary
from tasks.data.split import DataSplit, folds_for_split
from tasks.data.split_columns import resolve_split_columns, split_column_notes
from tasks.evaluation.diagnostics import RunEvidence
from tasks.evaluation.drift import drift_table, reference_sample
from tasks.memory import return_freed_memory
from tasks.model_selection.audit import FoldRefits, StartedFoldRefits, start_fold_refits
from tasks.model_selection.budget import SearchBudget, by_expected_value_per_second
from tasks.model_selection.encoding import (
    EncodingPlan,
    feasible_families,
    plan_encoding,
    prepared_bytes,
)
from tasks.model_selection.ensemble import ensemble_wanted
from tasks.model_selection.hgb_binning import use_fast_weighted_binning
from tasks.model_selection.parallel import (
    POOL_MIN_ROWS,
    count_physical_cores,
    end_worker_fits,
    release_worker_pool_after,
    uses_pool,
)
from tasks.model_selection.pipeline import candidate_count, choose_families, family_registry
from tasks.model_selection.prepared import FoldPreparations, PreparationRecord, store_budget
from tasks.model_selection.search import (
    FamilyResult,
    build_scorer,
    choose_selection_metric,
    select_best,
)
from tasks.run.artifacts import (
    SearchProgress,
    publish_drift,
    publish_history,
    publish_leaderboard,
    publish_report_link,
    publish_run_summary,
    report_stage,
)
from tasks.run.outputs import (
    RunWriter,
    TrainingOutputs,
    build_metrics,
    timed_summaries,
)
from tasks.run.report import drift_summary, leaderboard_rows, report_url, run_summary_markdown
from tasks.run.rundir import StageClock
from tasks.serving.registry import champion_answer, pending_decision
from tasks.steps import (
    audit_run,
    choose_schema,
    compare_with_champion,
    diagnose_run,
    evaluate_model,
    explain_model,
    finalise_model,
    load_data,
    measure_drift,
    profile_data,
    refit_winner,
    search_ensemble_of_families,
    search_model_family,
    split_data,
    validate_data,
)

SUMMARY_PLOTS = ("confusion_matrix", "roc", "precision_recall", "predicted_vs_actual", "residuals")


def cv_fits(
    config: RunConfig, task: str, families: list[str], n_folds: int, roughly_balanced: bool
) -> int:
    """How many CV fits the families' grids ask for (the refits aside)."""
    return n_folds * sum(
        candidate_count(
            family,
            task,
            grids=config.grids,
            rebalance=list(config.rebalance),
            roughly_balanced=roughly_balanced,
        )
        for family in families
    )


def worker_processes(
    config: RunConfig, profile: Any, families: list[str], folds: Any, n_rows: int
) -> int:
    """Worker processes for the CV fits (and then the permutation importance): the cores, for
    any search but a small one; 1 (the task threads) for a small one."""
    fits = cv_fits(config, profile.task, families, folds.get_n_splits(), profile.roughly_balanced)
    return config.n_jobs or available_cores() if uses_pool(fits, n_rows) else 1


def expected_worker_processes(config: RunConfig) -> int:
    """worker_processes as far as it can be told before the data is read: the fewest fits of
    any task the profile may find (that knows the config's models), and whether the file surely
    holds POOL_MIN_ROWS rows."""
    tasks = [config.task] if config.task != "auto" else ["binary", "multiclass", "regression"]
    fits = [
        cv_fits(config, task, choose_families(config.models, task), config.split.cv_folds, True)
        for task in tasks
        if all(name in family_registry(task) for name in config.models)
    ]
    if not fits:
        return 1
    large = has_rows(config.data, POOL_MIN_ROWS)
    return config.n_jobs or available_cores() if uses_pool(min(fits), POOL_MIN_ROWS * large) else 1


def importance_processes(
    config: RunConfig, profile: Any, families: list[str], folds: Any, n_rows: int
) -> int:
    """Processes for the permutation importance when the run computes it itself (no WorkerWork:
    no local pool): the search's for small data (spam_email, 3,900 rows: 6.4 s -> 4.6 s); at
    100k rows the evaluate stage was slower that way (5.0 s against 2.1 s), so one. With a local
    pool the CV workers compute it, one part each, beside the audit."""
    if n_rows >= POOL_MIN_ROWS:
        return 1
    return worker_processes(config, profile, families, folds, n_rows)


# Up to this many training rows the winner's refit is shorter than the CV workers' work beside
# it (the audit's fold refits, WorkerWork's first round): it runs on one thread.
SHORT_REFIT_ROWS = 250_000


def refit_threads(n_rows: int, n_jobs: int) -> int | None:
    """1 for a short refit while the CV workers have work: its OpenMP threads would wait for
    each other at every split while the workers hold the cores (100k rows: the run 0.35 s
    slower with two). A long one (1M rows) outlasts that work and keeps every core (None)."""
    return 1 if n_jobs > 1 and n_rows <= SHORT_REFIT_ROWS else None


def search_all_families(
    families: list[str],
    split: DataSplit,
    profile: Any,
    config: RunConfig,
    metric: str,
    folds: Any,
    *,
    plan: EncodingPlan,
    keep_out_of_fold: bool,
) -> list[FamilyResult]:
    """One concurrent task per family; the progress bar moves as each one finishes. The families
    share their fold preparations (each fitted once per fold; every fold at once when the
    encoding plan says they fit) and, when set, the time budget, which starts them in order of
    expected value per second. `keep_out_of_fold`: each keeps its best's out-of-fold predictions
    for the ensemble."""
    cv_jobs = worker_processes(config, profile, families, folds, len(split.y_train))
    _, threads_per_family = parallel_plan(len(families), cv_jobs)
    preparations = FoldPreparations(
        cv_jobs,
        store_budget(split.X_train),
        expected_fold_bytes=prepared_bytes(plan, len(split.X_train)),
    )
    budget = None
    order = families
    if config.search.time_budget is not None:
        budget = SearchBudget(config.search.time_budget)
        order = by_expected_value_per_second(families)
    progress = SearchProgress(
        len(families), config.dataset_name, deadline=budget.deadline if budget else None
    )
    with threadpool_limits(limits=threads_per_family), ExitStack() as search:
        if budget is not None and cv_jobs > 1:  # fits in the task threads cannot be ended
            search.callback(budget.watch(end_worker_fits))  # the watch ends with the search
        futures = {
            family: search_model_family.submit(
                family,
                split,
                profile,
                config,
                metric,
                folds,
                cv_jobs,
                threads_per_family,
                preparations,
                budget,
                keep_out_of_fold,
            )
            for family in order
        }
        for future in as_completed(list(futures.values())):
            progress.advance(future.result().family)
    preparations.release_data()  # the prepared matrices; the audit needs only the records
    return [futures[family].result() for family in families]


def ensemble_of(
    results: list[FamilyResult],
    split: DataSplit,
    profile: Any,
    config: RunConfig,
    metric: str,
    folds: Any,
) -> list[FamilyResult]:
    """The ensemble candidate (search.ensemble), listed after the families so it wins only with
    a strictly better CV score; nothing when there is nothing to blend."""
    families = [r.family for r in results]
    cv_jobs = worker_processes(config, profile, families, folds, len(split.y_train))
    ensemble = search_ensemble_of_families(results, split, profile, metric, folds, cv_jobs)
    return [ensemble] if ensemble is not None else []


def start_audit_refits(
    results: list[FamilyResult], split: DataSplit, folds: Any, n_jobs: int
) -> tuple[str, StartedFoldRefits] | None:
    """The leakage audit's fold re-fits of the winner's data steps, sent to the CV pool before
    the main process refits the winner, whose single-threaded data preparation leaves a core idle
    (1M rows: about 7 s). None without a pool, or for an ensemble (audited member by member)."""
    winner = select_best(results)
    if n_jobs == 1 or not isinstance(winner.estimator, Pipeline):
        return None
    unfitted = clone(winner.estimator)  # the main thread fits the winner's own object meanwhile
    return winner.family, start_fold_refits(unfitted, split.X_train, split.y_train, folds, n_jobs)


def audit_refits_for(
    best: FamilyResult, started: tuple[str, StartedFoldRefits] | None
) -> FoldRefits | None:
    """The fold re-fits started early, if they were of the family that won (a winner whose refit
    failed gives way to the next best)."""
    if started is None:
        return None
    family, refits = started
    return refits.result() if family == best.family else None


def shared_preparations(results: list[FamilyResult]) -> list[PreparationRecord]:
    """Every fold preparation the families fitted, once each (families share them)."""
    unique = {(r.key, r.fold): r for result in results for r in result.preparations}
    return list(unique.values())


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
    use_fast_weighted_binning()  # class-weighted boosting fits, 10-20x faster, same models
    count_physical_cores()  # before the data is loaded (lscpu)
    writer = RunWriter.begin(config, flow_run_id=current_flow_run_id())
    clock = StageClock()
    with (
        stop_at_once_on_sigterm(writer.interrupted),
        writer.failed_on_error(),
        untagged_task_runs(),
    ):
        report_stage("load")
        table = load_data(config.data)
        writer.manifest["data"] = data_facts(table)
        clock.lap("load")
        report_stage("validate")
        schema = choose_schema(config, table)
        writer.schema_yaml = schema.to_yaml() or ""
        frame = validate_data(table, schema)
        clock.lap("validate")
        report_stage("profile")
        split_settings = resolve_split_columns(frame, config.split, config.target)
        profile = profile_data(frame, config, split_settings)
        writer.manifest["data"].update(profile_summary(profile, table.notes))
        writer.manifest["data"]["notes"] += split_column_notes(split_settings, config.split)
        split = split_data(frame, profile, config, split_settings)
        selection = choose_selection_metric(profile, config.selection_metric)
        scorer = build_scorer(selection.metric, profile.positive_label)
        folds, cv_note = folds_for_split(split, config.split.cv_folds, config.seed, profile.task)
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
        blend = ensemble_wanted(config.search.ensemble, len(split.y_train))
        return_freed_memory()  # what reading and validating freed, before the search's peak
        results = search_all_families(
            families,
            split,
            profile,
            config,
            selection.metric,
            folds,
            plan=plan,
            keep_out_of_fold=blend,
        )
        if blend:
            results += ensemble_of(results, split, profile, config, selection.metric, folds)
        cv_jobs = worker_processes(config, profile, families, folds, len(split.y_train))
        worker_work = start_worker_work(
            results,
            split=split,
            profile=profile,
            metric=selection.metric,
            config=config,
            n_jobs=cv_jobs,
        )
        audit_refits = start_audit_refits(results, split, folds, cv_jobs)  # beside the refit
        with threadpool_limits(limits=refit_threads(len(split.y_train), cv_jobs)):
            best = refit_winner(results, split)
        clock.lap("search")
        return_freed_memory()
        report_stage("evaluate")
        model, threshold = finalise_model(best, split, profile, config, folds)
        predictions, test_metrics = evaluate_model(model, split, profile, threshold, config.seed)
        importance_jobs = importance_processes(config, profile, families, folds, len(split.y_train))
        evidence = RunEvidence(
            frame=frame,
            split=split,
            profile=profile,
            model=model,
            best=best,
            results=results,
            predictions=predictions,
            test_metrics=test_metrics,
            metric=selection.metric,
            folds=folds,
            split_settings=split_settings,
        )
        worker_work = worker_work.after_evaluation(
            evidence, config=config, scorer=scorer, n_jobs=cv_jobs
        )
        # The diagnostics run in a task thread beside the audit, which mostly hashes without the
        # GIL; BLAS's process-wide thread limit stays at one meanwhile.
        with threadpool_limits(limits=1):
            diagnosing = diagnose_run.submit(evidence, config)
            audit = audit_run(
                model,
                split,
                folds,
                threshold is not None,
                shared_preparations(results),
                cv_jobs,
                fold_refits=audit_refits_for(best, audit_refits),
            )
            explanations = explain_model(
                model,
                split,
                predictions,
                profile,
                scorer,
                config.seed,
                importance_jobs,
                started=worker_work.explains(),
            )
            clock.lap("evaluate")
            diagnostics = diagnosing.result()
        clock.lap("diagnostics")
        # What later runs compare with, and what this run compares with the champion's (both
        # at most 5,000 seeded training rows: the distances settle well below that).
        reference = reference_sample(
            table.frame,
            split.X_train.index,
            [*profile.feature_columns, profile.target],
            seed=config.seed,
        )
        drift = measure_drift(config, reference, profile)
        worker_work = worker_work.with_result_plots(explanations, drift, cv_jobs)
        release_worker_pool_after(worker_work.jobs())  # the CV workers' last jobs
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
            diagnostics=diagnostics,
        )
        # The champion decision depends on earlier runs, not on this run's inputs: it stays out
        # of metrics.json (byte-identical for the same data, config and seed).
        champion = compare_with_champion(
            config,
            writer.run.run_id,
            metrics,
            predictions,
            split,
            worker_work.answers(config.runs_dir, split.X_test),
        )
        champion["drift_found"] = drift["drift_found"] if drift else None
        leaderboard = leaderboard_rows(timed_summaries(results))
        report_stage("write")
        outputs = TrainingOutputs(
            metrics=metrics,
            champion=pending_decision(champion),
            results=results,
            best=best,
            model=model,
            predictions=predictions,
            profile=profile,
            split=split,
            audit=audit,
            explanations=explanations,
            leaderboard=leaderboard,
            drift=drift,
            reference=reference,
            model_file=worker_work.model_file(),
            plots=worker_work.plots(),
        )
        final = writer.complete_training(outputs, clock)
    # The registry decides, under its lock; every report of the champion comes from its answer.
    answer = champion_answer(config.runs_dir, champion)
    writer.record_champion_answer(answer)
    publish_leaderboard(leaderboard, config.dataset_name)
    publish_run_summary(
        run_summary_markdown(
            {**metrics, "champion": answer, "drift": drift},
            final,
            writer.plots,
            SUMMARY_PLOTS,
            column_roles=asdict(profile)["column_roles"],
        ),
        config.dataset_name,
    )
    publish_report_link(report_url(final), final)
    publish_history(dataset_history(config.runs_dir, config.dataset_name), config.dataset_name)
    if drift:
        publish_drift(drift_table(drift), drift_summary(drift), config.dataset_name)
    get_run_logger().info("Run complete: %s (best %s)", final, best.family)
    return str(final)
