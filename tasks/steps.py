"""Prefect tasks: thin wrappers that carry orchestration only (names, retries, caching).

DataFrames and models are passed in memory: NO_CACHE (Prefect would hash them) and no result
persistence (it would pickle them to disk). Tests call the plain functions these wrap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sklearn.model_selection import ParameterGrid

from schemas.infer import infer_schema, load_schema
from tasks.config import ClusteringConfig, RunConfig, SplitConfig
from tasks.data.profile import DataProfile, profile_frame
from tasks.data.read import LoadedTable, file_sha256, read_table
from tasks.data.split import DataSplit, split_by_config, split_frame
from tasks.data.split_columns import split_columns
from tasks.data.validate import validate_frame
from tasks.errors import ValidationFailed
from tasks.evaluation.diagnostics import RunEvidence, run_diagnostics
from tasks.evaluation.evaluate import (
    pipeline_of,
    predict_test,
    predict_values,
    probability_columns,
    regression_metrics_from_predictions,
    report_test_metrics,
)
from tasks.evaluation.explain import Explanations, explain
from tasks.model_selection.audit import FoldRefits, audit_leakage
from tasks.model_selection.budget import SearchBudget
from tasks.model_selection.encoding import layout_for, plan_encoding
from tasks.model_selection.ensemble import search_ensemble
from tasks.model_selection.parallel import cluster_stop, cv_parallelism, dask_worker_address
from tasks.model_selection.pipeline import (
    build_param_grid,
    build_pipeline,
    family_for,
    resolve_rebalancing,
    size_params,
)
from tasks.model_selection.prepared import FoldPreparations
from tasks.model_selection.search import (
    FamilyResult,
    build_scorer,
    refit_best,
    resolve_strategy,
    search_family,
)
from tasks.model_selection.threshold import tune_threshold
from tasks.run.artifacts import publish_validation_failures
from tasks.segmentation.clustering import (
    Clustering,
    PreparedFeatures,
    cluster_with_k,
    prepare_features,
    profile_for_clustering,
)
from tasks.serving.champion import judge_against_champion
from tasks.serving.predict import RunModel, load_run_model, predict_rows, write_predictions_file
from tasks.serving.reference import drift_against_champion


def retry_on_os_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what a flaky disk or share can cause; a user's bad file fails at once."""
    return isinstance(state.result(raise_on_failure=False), OSError)


@task(
    name="load",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_on_os_error,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def load_data(path: Path) -> LoadedTable:
    """Read the data file (CSV or Parquet)."""
    return read_table(path)


@task(name="schema", cache_policy=NO_CACHE, persist_result=False)
def choose_schema(config: RunConfig, table: LoadedTable) -> pa.DataFrameSchema:
    """The config's pandera schema, else one inferred from the data."""
    return resolve_schema(config, table.frame)


def resolve_schema(config: RunConfig, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """The config's schema, else one inferred from this file."""
    if config.schema_ref:
        return load_schema(config.schema_ref)
    return infer_schema(frame, name=f"{config.dataset_name}_inferred")


@task(
    name="validate",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_on_os_error,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def validate_data(table: LoadedTable, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Validate lazily; on failure show every failure case in the UI, then raise (the run's
    writer puts them in validation/failure_cases.csv)."""
    try:
        return validate_frame(table.frame, schema, str(table.path))
    except ValidationFailed as failure:
        publish_validation_failures(failure.failure_cases, str(table.path))
        where = "Every failure is listed in validation/failure_cases.csv of the run."
        raise ValidationFailed(f"{failure} {where}", failure.failure_cases) from None


@task(name="profile", cache_policy=NO_CACHE, persist_result=False)
def profile_data(
    frame: pd.DataFrame, config: RunConfig, split_settings: SplitConfig | None = None
) -> DataProfile:
    """Task, column kinds, missing values per column, class balance (the split's group or time
    column is not a feature)."""
    not_features = split_columns(split_settings) if split_settings else []
    return profile_frame(
        frame,
        config.target,
        task=config.task,
        positive_label=config.positive_label,
        drop_columns=[
            *config.drop_columns,
            *(c for c in not_features if c not in config.drop_columns),
        ],
        columns=config.columns,
    )


@task(name="split", cache_policy=NO_CACHE, persist_result=False)
def split_data(
    frame: pd.DataFrame,
    profile: DataProfile,
    config: RunConfig,
    split_settings: SplitConfig | None = None,
) -> DataSplit:
    """Seeded holdout (stratified for classes; by groups or by time when configured); the test
    rows wait untouched until evaluation."""
    if split_settings is None:
        return split_frame(frame, profile, config.split.test_size, config.seed)
    return split_by_config(frame, profile, split_settings, config.seed)


@task(name="search", task_run_name="search-{family}", cache_policy=NO_CACHE, persist_result=False)
def search_model_family(
    family: str,
    split: DataSplit,
    profile: DataProfile,
    config: RunConfig,
    selection_metric: str,
    folds: Any,
    n_jobs: int,
    threads: int = 1,
    preparations: FoldPreparations | None = None,
    budget: SearchBudget | None = None,
    keep_out_of_fold: bool = False,
) -> FamilyResult:
    """Cross-validated search of one family's grid, with rebalancing choices in the grid; fold
    preparations are shared with the other families through `preparations`; with
    `keep_out_of_fold`, its best's out-of-fold predictions are kept for the ensemble."""
    spec = family_for(profile.task, family)
    rebalancing = resolve_rebalancing(
        list(config.rebalance), spec, profile.roughly_balanced, profile.task
    )
    grid = build_param_grid(
        spec,
        config.grids.get(family, spec.grid),
        rebalancing,
        profile.categorical_columns,
        config.seed,
    )
    plan = plan_encoding(profile, split.X_train, config.encoding, folds.get_n_splits())
    strategy = resolve_strategy(
        config.search.strategy, len(split.y_train), len(ParameterGrid(grid)), budget
    )
    halving = strategy == "halving"
    pipeline = build_pipeline(
        spec,
        profile.numeric_columns,
        profile.categorical_columns,
        config.impute,
        config.seed,
        layout=layout_for(profile, split.X_train, plan, config.encoding, config.seed),
    ).set_params(**size_params(spec, len(split.y_train), halving=halving))
    with cv_parallelism(n_jobs, threads) as cv_jobs:
        result = search_family(
            family,
            pipeline,
            grid,
            split.X_train,
            split.y_train,
            build_scorer(selection_metric, profile.positive_label),
            folds,
            config.search.strategy,
            config.search.n_iter,
            cv_jobs,
            config.seed,
            preparations=preparations,
            budget=budget,
            stop=cluster_stop(flow_run.id),  # on a Dask worker: the run's stop request
            refit=False,  # the flow refits the winner alone (refit_winner)
            keep_out_of_fold=keep_out_of_fold,
        )
    return replace(result, worker=dask_worker_address())


@task(name="search-ensemble", cache_policy=NO_CACHE, persist_result=False)
def search_ensemble_of_families(
    results: list[FamilyResult],
    split: DataSplit,
    profile: DataProfile,
    selection_metric: str,
    folds: Any,
    n_jobs: int,
) -> FamilyResult | None:
    """A weighted blend of each family's best, scored from their out-of-fold predictions; its
    members, should it win, are refitted side by side in `n_jobs` processes."""
    return search_ensemble(
        results,
        split.y_train,
        task=profile.task,
        scoring=build_scorer(selection_metric, profile.positive_label),
        folds=folds,
        X_train=split.X_train,
        n_jobs=n_jobs,
    )


@task(name="refit-best", cache_policy=NO_CACHE, persist_result=False)
def refit_winner(results: list[FamilyResult], split: DataSplit) -> FamilyResult:
    """The best family's pipeline fitted on all training rows (flows/train.py: refit_threads)."""
    return refit_best(results, split.X_train, split.y_train)


@task(name="tune-threshold", cache_policy=NO_CACHE, persist_result=False)
def finalise_model(
    best: FamilyResult, split: DataSplit, profile: DataProfile, config: RunConfig, folds: Any
) -> tuple[Any, float | None]:
    """The model to evaluate and save: the refit best pipeline, wrapped with a decision threshold
    tuned on training rows only when the config asks for one (binary)."""
    assert best.estimator is not None
    if config.threshold is None or profile.positive_label is None:
        return best.estimator, None
    tuned = tune_threshold(
        best.estimator,
        split.X_train,
        split.y_train,
        folds,
        config.threshold,
        profile.positive_label,
        config.seed,
    )
    return tuned, float(tuned.best_threshold_)


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_model(
    model: Any, split: DataSplit, profile: DataProfile, threshold: float | None, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the final model once on the test set; metrics and intervals come from the
    predictions alone (so predictions.csv re-derives them)."""
    if profile.task == "regression":
        values = predict_values(model, split.X_test, split.y_test)
        return values, regression_metrics_from_predictions(values, seed)
    predictions = predict_test(model, split.X_test, split.y_test)
    return predictions, report_test_metrics(
        predictions, profile.classes, profile.positive_label, threshold, seed
    )


@task(name="leakage-audit", cache_policy=NO_CACHE, persist_result=False)
def audit_run(
    model: Any,
    split: DataSplit,
    folds: Any,
    tuned: bool,
    shared_preparations: Any = None,
    n_jobs: int = 1,
    fold_refits: FoldRefits | None = None,
) -> dict[str, Any]:
    """What every fitted step saw, per fold, per shared fold preparation and for the final refit;
    computed, not assumed. The folds' refits run in n_jobs processes (the search's pool), unless
    `fold_refits` made them already (flows/train.py: start_audit_refits)."""
    return audit_leakage(
        pipeline_of(model),
        split.X_train,
        split.y_train,
        split.X_test,
        folds,
        X_threshold_fit=split.X_train if tuned else None,
        groups=split.groups,
        times=split.times,
        shared_preparations=shared_preparations,
        n_jobs=n_jobs,
        fold_refits=fold_refits,
    )


@task(name="explain", cache_policy=NO_CACHE, persist_result=False)
def explain_model(
    model: Any,
    split: DataSplit,
    predictions: pd.DataFrame,
    profile: DataProfile,
    scoring: Any,
    seed: int,
    n_jobs: int = 1,
    started: Callable[[], Explanations] | None = None,
) -> Explanations:
    """Calibration (Brier score) and permutation importance of the raw columns; `started`: their
    result, when a CV worker computes them."""
    if started is not None:
        return started()
    return explain(
        model,
        **explanation_inputs(split, predictions, profile),
        scoring=scoring,
        seed=seed,
        n_jobs=n_jobs,
    )


def explanation_inputs(
    split: DataSplit, predictions: pd.DataFrame, profile: DataProfile
) -> dict[str, Any]:
    """explain's test rows and answers (a CV worker is sent these, not the whole split)."""
    return {
        "X_test": split.X_test,
        "y_test": split.y_test,
        "probabilities": probability_columns(predictions)
        if profile.task != "regression"
        else pd.DataFrame(),
        "classes": profile.classes,
        "positive_label": profile.positive_label,
    }


@task(name="diagnostics", cache_policy=NO_CACHE, persist_result=False)
def diagnose_run(evidence: RunEvidence, config: RunConfig) -> list[dict[str, Any]]:
    """Leakage and weak evidence a fold audit cannot see, as coded diagnostics."""
    return run_diagnostics(
        evidence,
        scorer=build_scorer(evidence.metric, evidence.profile.positive_label),
        settings=config.diagnostics,
        seed=config.seed,
    )


@task(name="drift", cache_policy=NO_CACHE, persist_result=False)
def measure_drift(
    config: RunConfig, reference: pd.DataFrame, profile: DataProfile
) -> dict[str, Any] | None:
    """This run's reference sample of its training rows against the champion's (None when
    there is no champion)."""
    return drift_against_champion(
        config.runs_dir,
        config.dataset_name,
        reference,
        features=profile.feature_columns,
        target=profile.target,
        settings=config.diagnostics,
    )


@task(name="champion", cache_policy=NO_CACHE, persist_result=False)
def compare_with_champion(
    config: RunConfig,
    run_id: str,
    metrics: dict[str, Any],
    predictions: pd.DataFrame,
    split: DataSplit,
    answers: Callable[[str], pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Paired bootstrap against the dataset's champion on this run's test rows (by whole groups
    under split.groups); `answers`: the champion's, by run id, when a CV worker made them."""
    return judge_against_champion(
        config.runs_dir,
        config.dataset_name,
        run_id,
        metrics,
        predictions,
        split.X_test,
        config.seed,
        {
            "data_sha256": file_sha256(config.data),
            "seed": config.seed,
            "test_size": config.split.test_size,
            "split_groups": config.split.groups,
            "split_time": config.split.time,
        },
        groups=None if split.groups is None else split.groups.loc[split.X_test.index].to_numpy(),
        answers=answers,
    )


@task(name="load-model", cache_policy=NO_CACHE, persist_result=False)
def load_model(reference: str, runs_dir: Path, trust: bool, allow_failed: bool = False) -> RunModel:
    """The saved model after its signature, hash and location checks, with its schema."""
    return load_run_model(reference, runs_dir, trust, allow_failed)


@task(name="predict", cache_policy=NO_CACHE, persist_result=False)
def predict_new_rows(run_model: RunModel, table: LoadedTable) -> pd.DataFrame:
    """Validate new rows with the training schema, then predict; failures go to the UI too."""
    try:
        return predict_rows(run_model, table.frame, str(table.path))
    except ValidationFailed as failure:
        publish_validation_failures(failure.failure_cases, str(table.path))
        raise


@task(name="write-predictions", cache_policy=NO_CACHE, persist_result=False)
def write_batch_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    """The predictions file (CSV or Parquet by suffix)."""
    return write_predictions_file(predictions, path)


# The segmentation flow's steps.


@task(name="profile", cache_policy=NO_CACHE, persist_result=False)
def profile_segment_data(frame: pd.DataFrame, config: RunConfig) -> DataProfile:
    """Feature kinds and gaps; a configured target is held out to compare the clusters with."""
    return profile_for_clustering(frame, config.target, config.drop_columns)


@task(name="prepare", cache_policy=NO_CACHE, persist_result=False)
def prepare_segment_features(
    frame: pd.DataFrame, profile: DataProfile, config: RunConfig
) -> PreparedFeatures:
    """Impute, scale and one-hot encode every row."""
    return prepare_features(frame, profile, config.impute)


@task(name="cluster", task_run_name="cluster-k{k}", cache_policy=NO_CACHE, persist_result=False)
def cluster_k(matrix: np.ndarray, k: int, settings: ClusteringConfig, seed: int) -> Clustering:
    """Cluster with k clusters and score the silhouette."""
    return cluster_with_k(matrix, k, settings, seed)
