"""Data drift between a reference table (the champion's training rows) and this run's training
rows, per column and for the target.

Methods and thresholds follow Evidently's defaults: with a reference of at most 1,000 rows, a
two-sample Kolmogorov-Smirnov test (numbers with more than 5 distinct values) or a chi-squared
test (everything else), drift at p < 0.05; above 1,000 rows, the Wasserstein distance divided by
the reference's standard deviation, or the Jensen-Shannon distance of the category shares, drift
at 0.1 or more. A change of the missing share by 0.1 or more counts as drift too. The dataset has
drifted when at least half of its columns have.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from tasks.config import DiagnosticsConfig

SMALL_REFERENCE_ROWS = 1000
# Numbers with at most this many distinct values are compared as categories (as Evidently does).
FEW_VALUES = 5
MAX_LISTED_CATEGORIES = 10
# Each run keeps at most this many of its training rows for later runs' drift (the distances
# settle well below it, and a file that is replaced in place can no longer tell them).
REFERENCE_SAMPLE_ROWS = 5_000


def reference_sample(
    frame: pd.DataFrame, rows: pd.Index, columns: list[str], *, seed: int
) -> pd.DataFrame:
    """The training rows a later run compares its data with: all of them, or a seeded sample of
    REFERENCE_SAMPLE_ROWS in their original order."""
    training = frame.loc[rows, list(dict.fromkeys(columns))]
    if len(training) > REFERENCE_SAMPLE_ROWS:
        training = training.sample(n=REFERENCE_SAMPLE_ROWS, random_state=seed).sort_index()
    return training


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def numeric_drift(
    reference: pd.Series, current: pd.Series, settings: DiagnosticsConfig
) -> dict[str, Any]:
    """KS test for a small reference, else the Wasserstein distance in reference std units."""
    ref, cur = reference.dropna().astype(float), current.dropna().astype(float)
    if len(reference) <= SMALL_REFERENCE_ROWS:
        return tested("ks", float(ks_2samp(ref, cur).pvalue), settings)
    spread = float(ref.std()) or 1.0  # a constant reference: distance in the data's own units
    return measured("wasserstein_normed", float(wasserstein_distance(ref, cur)) / spread, settings)


def tested(method: str, p_value: float, settings: DiagnosticsConfig) -> dict[str, Any]:
    """A statistical test's verdict: drifted below the p-value threshold."""
    return {
        "method": method,
        "statistic": rounded(p_value),
        "threshold": settings.drift_p_value,
        "score": drift_score_from_p(p_value, settings.drift_p_value),
        "distribution_drifted": p_value < settings.drift_p_value,
    }


def measured(method: str, distance: float, settings: DiagnosticsConfig) -> dict[str, Any]:
    """A distance's verdict: drifted at or above the distance threshold."""
    return {
        "method": method,
        "statistic": rounded(distance),
        "threshold": settings.drift_threshold,
        "score": rounded(distance / settings.drift_threshold),
        "distribution_drifted": distance >= settings.drift_threshold,
    }


def drift_score_from_p(p_value: float, threshold: float) -> float | None:
    """A test's p-value on the same scale as a distance: 1 at the threshold, larger = more."""
    return rounded(max(0.0, -math.log10(max(p_value, 1e-300)) / -math.log10(threshold)))


def category_counts(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    ref = reference.dropna().astype(str).value_counts()
    cur = current.dropna().astype(str).value_counts()
    return pd.DataFrame({"reference": ref, "current": cur}).fillna(0.0)


def categorical_drift(
    reference: pd.Series, current: pd.Series, settings: DiagnosticsConfig
) -> dict[str, Any]:
    """Chi-squared test for a small reference, else the Jensen-Shannon distance of the shares;
    with the categories that appeared and those that went."""
    counts = category_counts(reference, current)
    new = sorted(counts.index[(counts["reference"] == 0) & (counts["current"] > 0)])
    gone = sorted(counts.index[(counts["reference"] > 0) & (counts["current"] == 0)])
    listed = {
        "new_categories": new[:MAX_LISTED_CATEGORIES],
        "gone_categories": gone[:MAX_LISTED_CATEGORIES],
    }
    if len(counts) < 2 or counts["reference"].sum() == 0 or counts["current"].sum() == 0:
        return {
            "method": "none",
            "statistic": None,
            "threshold": None,
            "score": None,
            "distribution_drifted": bool(new or gone),
            **listed,
        }
    if len(reference) <= SMALL_REFERENCE_ROWS:
        p_value = float(chi2_contingency(counts.T.to_numpy()).pvalue)
        return {**tested("chi_squared", p_value, settings), **listed}
    shares = counts / counts.sum()
    distance = float(jensenshannon(shares["reference"], shares["current"]))
    return {**measured("jensen_shannon", distance, settings), **listed}


def column_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DiagnosticsConfig
) -> dict[str, Any]:
    """One column's drift: its distribution and its missing share."""
    numeric = is_numeric(reference) and is_numeric(current)
    as_numbers = numeric and reference.nunique() > FEW_VALUES
    result = (
        numeric_drift(reference, current, settings)
        if as_numbers
        else categorical_drift(reference, current, settings)
    )
    missing_reference = float(reference.isna().mean()) if len(reference) else 0.0
    missing_current = float(current.isna().mean()) if len(current) else 0.0
    missing_change = missing_current - missing_reference
    missing_drifted = abs(missing_change) >= settings.drift_threshold
    reasons = [
        reason
        for reason, flagged in (
            ("distribution", result["distribution_drifted"]),
            ("missing share", missing_drifted),
        )
        if flagged
    ]
    return {
        "column": name,
        "kind": "numeric" if as_numbers else "categorical",
        **result,
        "missing_share_reference": rounded(missing_reference),
        "missing_share_current": rounded(missing_current),
        "missing_share_change": rounded(missing_change),
        "drifted": bool(reasons),
        "reasons": reasons,
    }


def compare_tables(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    settings: DiagnosticsConfig,
) -> dict[str, Any]:
    """Per-feature drift (drifted first, then by score), the target's, and the share drifted."""
    shared = [c for c in features if c in reference.columns and c in current.columns]
    columns = [column_drift(c, reference[c], current[c], settings) for c in shared]
    columns.sort(key=lambda row: (not row["drifted"], -(row["score"] or 0.0), row["column"]))
    drifted = [row["column"] for row in columns if row["drifted"]]
    share = len(drifted) / len(columns) if columns else 0.0
    target_drift = (
        column_drift(target, reference[target], current[target], settings)
        if target in reference.columns and target in current.columns
        else None
    )
    return {
        "status": "compared",
        "reference_rows": len(reference),
        "current_rows": len(current),
        "columns": columns,
        "columns_only_in_reference": sorted(set(features) - set(reference.columns)),
        "drifted_columns": drifted,
        "share_drifted": rounded(share),
        "drift_share_threshold": settings.drift_share,
        "dataset_drift": share >= settings.drift_share and bool(columns),
        "target": target_drift,
        "drift_found": bool(drifted) or bool(target_drift and target_drift["drifted"]),
    }


def drift_table(drift: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the drift-<dataset> artifact and the report: drifted columns first."""
    rows = [*drift.get("columns", [])]
    if drift.get("target"):
        rows.insert(0, {**drift["target"], "column": f"{drift['target']['column']} (target)"})
    return [
        {
            "column": row["column"],
            "drifted": "yes" if row["drifted"] else "no",
            "method": row["method"],
            "statistic": row["statistic"],
            "threshold": row["threshold"],
            "missing_share_change": row["missing_share_change"],
            "new_categories": ", ".join(row.get("new_categories", [])),
            "gone_categories": ", ".join(row.get("gone_categories", [])),
        }
        for row in rows
    ]


def drift_scores(drift: dict[str, Any]) -> pd.Series:
    """Per column, the drift score on one scale (1 = the threshold), for the plot."""
    scores = {
        row["column"]: (row["score"] if row["score"] is not None else np.nan)
        for row in drift.get("columns", [])
    }
    return pd.Series(scores, dtype=float)
