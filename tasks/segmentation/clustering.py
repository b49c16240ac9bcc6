"""Customer segmentation (unsupervised): impute, scale and one-hot encode, then cluster for each k
in a range and let the silhouette score choose k. Plain functions; tasks/steps.py wraps
them as Prefect tasks and flows/segment.py wires them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline

from tasks.config import ClusteringConfig, ImputeConfig
from tasks.data.profile import DataProfile, column_kinds, unusable_columns
from tasks.errors import DataError
from tasks.model_selection.pipeline import build_encoder, build_imputer

# silhouette_score costs O(n²) memory and time: above this many rows it scores a seeded sample.
SILHOUETTE_SAMPLE = 5000
# k-means restarts from this many seeded initialisations and keeps the best (lowest inertia).
KMEANS_RESTARTS = 10


@dataclass(frozen=True)
class PreparedFeatures:
    """The rows to cluster: raw features (for profiles) and the scaled, encoded matrix."""

    raw: pd.DataFrame
    matrix: np.ndarray
    preprocessor: Pipeline


@dataclass
class Clustering:
    """One k's clustering: labels, silhouette, and (k-means only) inertia and the fitted model."""

    k: int
    labels: np.ndarray
    silhouette: float | None
    inertia: float | None
    model: BaseEstimator
    sizes: dict[int, int] = field(default_factory=dict)


def profile_for_clustering(
    frame: pd.DataFrame, held_out: str = "", drop_columns: list[str] | None = None
) -> DataProfile:
    """Column kinds and gaps of the features; a named target is held out (to compare with)."""
    if held_out and held_out not in frame.columns:
        raise DataError(f"Column '{held_out}' (target) is not in the data.")
    features = frame.drop(columns=[c for c in [held_out, *(drop_columns or [])] if c])
    dropped = unusable_columns(features)
    numeric, categorical = column_kinds(features.drop(columns=list(dropped)))
    if not numeric and not categorical:
        raise DataError("No usable feature columns are left to cluster on.")
    return DataProfile(
        task="clustering",
        target=held_out,
        n_rows=len(frame),
        n_columns=frame.shape[1],
        classes=[],
        class_counts={},
        minority_share=1.0,
        positive_label=None,
        numeric_columns=numeric,
        categorical_columns=categorical,
        missing_per_column={str(c): int(v) for c, v in features.isna().sum().items()},
        dropped_columns=dropped,
    )


def prepare_features(
    frame: pd.DataFrame, profile: DataProfile, impute: ImputeConfig
) -> PreparedFeatures:
    """Impute, scale numbers and one-hot encode categories, fitted on every row (no labels to
    leak: clustering has no test set)."""
    raw = frame[profile.feature_columns]
    preprocessor = Pipeline(
        [
            ("impute", build_imputer(profile.numeric_columns, profile.categorical_columns, impute)),
            ("encode", build_encoder(profile.numeric_columns, profile.categorical_columns)),
        ]
    )
    matrix = np.asarray(preprocessor.fit_transform(raw), dtype=float)
    return PreparedFeatures(raw, matrix, preprocessor)


def k_values(settings: ClusteringConfig, n_rows: int) -> list[int]:
    """k from k_min to k_max, capped below the row count (a silhouette needs k < rows)."""
    highest = min(settings.k_max, n_rows - 1)
    if highest < settings.k_min:
        raise DataError(
            f"The data has {n_rows} rows: too few for clustering.k_min={settings.k_min}."
        )
    return list(range(settings.k_min, highest + 1))


def silhouette_or_none(matrix: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    """Mean silhouette (−1..1, higher is better separated); None if fewer than two clusters."""
    if len(np.unique(labels)) < 2:
        return None
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(matrix, labels, sample_size=sample, random_state=seed))


def build_clusterer(k: int, settings: ClusteringConfig, seed: int) -> BaseEstimator:
    if settings.algorithm == "agglomerative":
        return AgglomerativeClustering(n_clusters=k, linkage=settings.linkage)
    return KMeans(n_clusters=k, n_init=KMEANS_RESTARTS, random_state=seed)


def cluster_with_k(matrix: np.ndarray, k: int, settings: ClusteringConfig, seed: int) -> Clustering:
    """Fit one clustering with k clusters and score it."""
    model = build_clusterer(k, settings, seed)
    labels = np.asarray(model.fit_predict(matrix))  # type: ignore[attr-defined]
    values, counts = np.unique(labels, return_counts=True)
    inertia = getattr(model, "inertia_", None)
    return Clustering(
        k=k,
        labels=labels,
        silhouette=silhouette_or_none(matrix, labels, seed),
        inertia=None if inertia is None else float(inertia),
        model=model,
        sizes={int(v): int(c) for v, c in zip(values, counts, strict=True)},
    )


def choose_k(results: list[Clustering]) -> Clustering:
    """The highest silhouette; on a tie the smaller k (fewer segments are easier to act on)."""
    scored = [r for r in results if r.silhouette is not None]
    if not scored:
        raise DataError("No k gave two or more clusters: the rows may be identical.")
    return max(scored, key=lambda r: (r.silhouette, -r.k))


def selection_reason(best: Clustering, settings: ClusteringConfig) -> str:
    return (
        f"k={best.k} has the highest mean silhouette ({best.silhouette:.3f}) of "
        f"k={settings.k_min}..{settings.k_max}: its rows sit closest to their own cluster "
        "relative to the nearest other one."
    )


def assignment_model(prepared: PreparedFeatures, best: Clustering) -> Pipeline:
    """Raw columns in, cluster out. k-means predicts by nearest centre itself; agglomerative
    clustering cannot predict, so new rows go to the nearest centroid of its clusters."""
    assigner = best.model
    if not hasattr(assigner, "predict"):
        assigner = NearestCentroid().fit(prepared.matrix, best.labels)
    return Pipeline([("prepare", prepared.preprocessor), ("model", assigner)])


def cluster_profiles(raw: pd.DataFrame, labels: np.ndarray, profile: DataProfile) -> pd.DataFrame:
    """One row per cluster: size, share, mean of each numeric column, most frequent category."""
    grouped = raw.assign(cluster=labels).groupby("cluster", sort=True)
    table = pd.DataFrame({"size": grouped.size()})
    table["share"] = table["size"] / len(raw)
    if profile.numeric_columns:
        table = table.join(grouped[profile.numeric_columns].mean())
    for column in profile.categorical_columns:
        table[column] = grouped[column].agg(most_frequent)
    return table.reset_index()


def most_frequent(values: pd.Series) -> Any:
    modes = values.mode(dropna=True)
    return modes.iloc[0] if len(modes) else None


def project_2d(matrix: np.ndarray, seed: int) -> tuple[np.ndarray, list[float]]:
    """PCA to two components, with the share of variance each explains."""
    components = min(2, matrix.shape[1])
    pca = PCA(n_components=components, random_state=seed)
    points = pca.fit_transform(matrix)
    if components == 1:
        points = np.column_stack([points, np.zeros(len(points))])
    return points, [float(v) for v in pca.explained_variance_ratio_]


def compare_with_column(labels: np.ndarray, column: pd.Series) -> dict[str, Any]:
    """How the clusters line up with a held-out column: adjusted Rand index and the crosstab."""
    known = column.notna().to_numpy()
    crosstab = pd.crosstab(labels[known], column[known].astype(str).to_numpy())
    return {
        "column": str(column.name),
        "adjusted_rand_index": float(adjusted_rand_score(column[known].astype(str), labels[known])),
        "crosstab": {
            str(cluster): {str(k): int(v) for k, v in row.items()}
            for cluster, row in crosstab.iterrows()
        },
    }


def per_k_rows(results: list[Clustering], best: Clustering) -> list[dict[str, Any]]:
    """The leaderboard: k, silhouette, inertia, smallest and largest cluster, which was chosen."""
    return [
        {
            "k": r.k,
            "silhouette": r.silhouette,
            "inertia": r.inertia,
            "smallest_cluster": min(r.sizes.values()),
            "largest_cluster": max(r.sizes.values()),
            "chosen": r.k == best.k,
        }
        for r in results
    ]


def segment_metrics(
    dataset: str,
    settings: ClusteringConfig,
    profile: DataProfile,
    results: list[Clustering],
    best: Clustering,
    comparison: dict[str, Any] | None,
) -> dict[str, Any]:
    """metrics.json of a segmentation run: every k's score, the chosen k and why, the sizes."""
    return {
        "dataset": dataset,
        "task": "clustering",
        "algorithm": settings.algorithm,
        "linkage": settings.linkage if settings.algorithm == "agglomerative" else None,
        "k_range": [settings.k_min, settings.k_max],
        "selection_metric": "silhouette",
        "selection_reason": selection_reason(best, settings),
        "silhouette_sampled": profile.n_rows > SILHOUETTE_SAMPLE,
        "n_rows": profile.n_rows,
        "features": {
            "numeric": profile.numeric_columns,
            "categorical": profile.categorical_columns,
        },
        "per_k": per_k_rows(results, best),
        "best_k": best.k,
        "silhouette": best.silhouette,
        "cluster_sizes": {str(k): v for k, v in best.sizes.items()},
        "held_out_comparison": comparison,
    }
