"""Prefect tasks of the segmentation flow: thin wrappers over tasks/segment.py (NO_CACHE, no
persisted results: they pass frames, matrices and models in memory)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.artifacts import LEADERBOARD_KEY
from tasks.config import ClusteringConfig, RunConfig
from tasks.profile import DataProfile
from tasks.segment import (
    Clustering,
    PreparedFeatures,
    cluster_with_k,
    prepare_features,
    profile_for_clustering,
)


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


def publish_segment_leaderboard(rows: list[dict[str, Any]], dataset: str) -> None:
    """The same `leaderboard` key as training, so the UI shows it in the run's artifacts."""
    create_table_artifact(
        key=LEADERBOARD_KEY, table=rows, description=f"{dataset}: silhouette per k (segmentation)"
    )
