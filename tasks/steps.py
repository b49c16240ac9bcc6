"""Prefect tasks: thin wrappers that carry orchestration only (names, retries, caching).

DataFrames and models are passed in memory: NO_CACHE (Prefect would hash them) and no result
persistence (it would pickle them to disk). Tests call the plain functions these wrap.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.infer import infer_schema, load_schema
from tasks.artifacts import publish_validation_failures
from tasks.cluster import cv_parallelism, dask_worker_address
from tasks.config import RunConfig
from tasks.data import LoadedTable, read_table
from tasks.evaluate import metrics_from_predictions, predict_test
from tasks.pipeline import (
    FAMILIES,
    build_param_grid,
    build_pipeline,
    resolve_rebalancing,
)
from tasks.profile import DataProfile, profile_frame
from tasks.rundir import RunDir
from tasks.search import FamilyResult, build_scorer, search_family
from tasks.split import DataSplit, split_frame
from tasks.validation import ValidationFailed, validate_frame, write_failure_cases


@task(name="load", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, persist_result=False)
def load_data(path: Path) -> LoadedTable:
    """Read the data file (CSV or Parquet)."""
    return read_table(path)


def resolve_schema(config: RunConfig, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """The config's schema, else one inferred from this file."""
    if config.schema_ref:
        return load_schema(config.schema_ref)
    return infer_schema(frame, name=f"{config.dataset_name}_inferred")


@task(name="validate", cache_policy=NO_CACHE, persist_result=False)
def validate_data(table: LoadedTable, config: RunConfig, run: RunDir) -> pd.DataFrame:
    """Validate lazily; on failure write every failure case to the run and the UI, then raise."""
    schema = resolve_schema(config, table.frame)
    run.path("schema.yaml").write_text(schema.to_yaml() or "", encoding="utf-8")
    try:
        return validate_frame(table.frame, schema, str(table.path))
    except ValidationFailed as failure:
        write_failure_cases(failure.failure_cases, run.path("validation", "failure_cases.csv"))
        publish_validation_failures(failure.failure_cases, str(table.path))
        raise


@task(name="profile", cache_policy=NO_CACHE, persist_result=False)
def profile_data(frame: pd.DataFrame, config: RunConfig) -> DataProfile:
    """Task, column kinds, missing values per column, class balance."""
    return profile_frame(
        frame, config.target, config.task, config.positive_label, config.drop_columns
    )


@task(name="split", cache_policy=NO_CACHE, persist_result=False)
def split_data(frame: pd.DataFrame, profile: DataProfile, config: RunConfig) -> DataSplit:
    """Stratified, seeded holdout; the test rows wait untouched until evaluation."""
    return split_frame(frame, profile, config.split.test_size, config.seed)


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
) -> FamilyResult:
    """Cross-validated search of one family's grid, with rebalancing choices in the grid."""
    spec = FAMILIES[family]
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
    pipeline = build_pipeline(
        spec, profile.numeric_columns, profile.categorical_columns, config.impute, config.seed
    )
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
        )
    return replace(result, worker=dask_worker_address())


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_best(
    best: FamilyResult, split: DataSplit, profile: DataProfile
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the selected pipeline once on the test set; metrics come from the predictions."""
    assert best.estimator is not None
    predictions = predict_test(best.estimator, split.X_test, split.y_test)
    return predictions, metrics_from_predictions(
        predictions, profile.classes, profile.positive_label
    )
