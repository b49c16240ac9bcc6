"""Segmentation: silhouette finds the k of seeded blobs, profiles are right, the flow writes its
run directory through real Prefect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from tasks.checks import load_config
from tasks.config import ClusteringConfig, ImputeConfig
from tasks.errors import ConfigError, DataError
from tasks.segmentation.clustering import (
    assignment_model,
    choose_k,
    cluster_profiles,
    cluster_with_k,
    k_values,
    prepare_features,
    profile_for_clustering,
)


def blob_frame(n_rows: int = 120, centers: int = 4, seed: int = 0) -> pd.DataFrame:
    """Well-separated blobs in three numeric columns, a blob-linked category, ~5% gaps, and the
    true blob as 'blob' (to hold out and compare with)."""
    X, blob = make_blobs(
        n_samples=n_rows, centers=centers, n_features=3, cluster_std=0.7, random_state=seed
    )
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(X, columns=["spend", "visits", "tenure"])
    frame["region"] = np.array(["north", "south", "east", "west", "centre"])[blob]
    frame["blob"] = blob.astype(str)
    for column in ("spend", "visits", "region"):
        frame.loc[rng.random(n_rows) < 0.05, column] = np.nan
    return frame


def cluster_range(frame: pd.DataFrame, settings: ClusteringConfig) -> list[int]:
    profile = profile_for_clustering(frame, "blob")
    prepared = prepare_features(frame, profile, ImputeConfig())
    results = [
        cluster_with_k(prepared.matrix, k, settings, seed=0) for k in k_values(settings, 120)
    ]
    return [choose_k(results).k, *[r.k for r in results]]


@pytest.mark.parametrize("algorithm", ["kmeans", "agglomerative"])
@pytest.mark.parametrize("centers", [3, 4])
def test_silhouette_finds_the_number_of_blobs(algorithm: str, centers: int) -> None:
    frame = blob_frame(centers=centers)
    chosen, *tried = cluster_range(frame, ClusteringConfig(algorithm=algorithm, k_max=7))
    assert tried == [2, 3, 4, 5, 6, 7]
    assert chosen == centers


def test_held_out_column_is_not_a_feature() -> None:
    profile = profile_for_clustering(blob_frame(), "blob")
    assert profile.numeric_columns == ["spend", "visits", "tenure"]
    assert profile.categorical_columns == ["region"]
    assert profile.missing_per_column["spend"] > 0


def test_cluster_profiles_by_hand() -> None:
    frame = pd.DataFrame(
        {"amount": [1.0, 3.0, 10.0, 20.0, np.nan], "kind": ["a", "a", "b", "c", "c"]}
    )
    profile = profile_for_clustering(frame)
    profiles = cluster_profiles(frame, np.array([0, 0, 1, 1, 1]), profile)
    assert profiles["size"].tolist() == [2, 3]
    assert profiles["share"].tolist() == [0.4, 0.6]
    assert profiles["amount"].tolist() == [2.0, 15.0]  # the gap is left out of the mean
    assert profiles["kind"].tolist() == ["a", "c"]


def test_saved_model_assigns_the_same_clusters() -> None:
    frame = blob_frame()
    profile = profile_for_clustering(frame, "blob")
    prepared = prepare_features(frame, profile, ImputeConfig())
    for algorithm in ("kmeans", "agglomerative"):
        best = cluster_with_k(prepared.matrix, 4, ClusteringConfig(algorithm=algorithm), seed=0)
        model = assignment_model(prepared, best)
        agreement = (model.predict(frame.drop(columns="blob")) == best.labels).mean()
        assert agreement >= 0.95 if algorithm == "agglomerative" else agreement == 1.0


def test_k_range_is_capped_by_rows_and_checked() -> None:
    assert k_values(ClusteringConfig(k_min=2, k_max=8), n_rows=5) == [2, 3, 4]
    with pytest.raises(DataError, match="k_min=4"):
        k_values(ClusteringConfig(k_min=4, k_max=8), n_rows=4)


def test_clustering_config_needs_no_target_and_checks_the_range(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    config = load_config(None, overrides=["task=clustering"], data=data)
    assert (config.target, config.clustering.k_min, config.clustering.k_max) == ("", 2, 8)
    with pytest.raises(ConfigError, match="required key 'target'"):
        load_config(None, data=data)
    with pytest.raises(ConfigError, match="k_min"):
        load_config(None, overrides=["task=clustering", "clustering.k_min=9"], data=data)


def test_train_refuses_a_clustering_config(tmp_path: Path) -> None:
    from flows.runtime import TrainParameters, resolve_config

    params = TrainParameters(data=str(tmp_path / "d.csv"), overrides=["task=clustering"])
    with pytest.raises(ConfigError, match="tabpipe segment"):
        resolve_config(params)


def test_segment_flow_writes_the_run_contract(prefect_harness: None, tmp_path: Path) -> None:
    from flows.segment import SegmentParameters, segment
    from tasks.run.model_io import load_checked_model

    data = tmp_path / "customers.csv"
    frame = blob_frame(centers=3)
    frame.to_csv(data, index=False)
    params = SegmentParameters(
        data=str(data),
        overrides=["clustering.k_max=5", "target=blob", f"runs_dir={tmp_path / 'runs'}"],
    )
    run_dir = Path(segment(params))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "clustering"
    assert metrics["best_k"] == 3
    assert [row["k"] for row in metrics["per_k"]] == [2, 3, 4, 5]
    assert sum(metrics["cluster_sizes"].values()) == 120
    assert metrics["held_out_comparison"]["adjusted_rand_index"] > 0.9

    clusters = pd.read_csv(run_dir / "clusters.csv")
    assert list(clusters.columns) == ["row", "cluster"]
    assert clusters["cluster"].value_counts().sort_index().tolist() == list(
        metrics["cluster_sizes"].values()
    )
    profiles = pd.read_csv(run_dir / "cluster_profile.csv")
    assert profiles["size"].sum() == 120
    assert {"spend", "visits", "tenure", "region"} <= set(profiles.columns)

    for plot in ("silhouette_per_k", "projection", "missing_values"):
        assert (run_dir / "plots" / f"{plot}.png").stat().st_size > 0
    model, card = load_checked_model(run_dir / "models" / "best.skops", run_dir.parent)
    assert card["k"] == 3
    assert (model.predict(frame.drop(columns="blob")) == clusters["cluster"]).all()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    assert 'id="best-k">k = 3' in (run_dir / "report.html").read_text()


def test_segment_command_prints_the_choice(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli.main import main

    data = tmp_path / "customers.csv"
    blob_frame(n_rows=60, centers=2).drop(columns="blob").to_csv(data, index=False)
    runs = tmp_path / "runs"
    assert main(["segment", "--data", str(data), "--k-max", "4", "--set", f"runs_dir={runs}"]) == 0
    out = capsys.readouterr().out
    assert "Chosen k = 2" in out
    assert "cluster 1" in out
    assert len(list(runs.iterdir())) == 1
