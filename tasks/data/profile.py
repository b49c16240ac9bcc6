"""What the data looks like before anything learns from it: task, column kinds, gaps, balance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tasks.data.roles import LEFT_OUT_ROLES, ColumnRole, decide_roles, role_notes
from tasks.errors import DataError

# The course: ROC for roughly balanced classes, precision-recall for moderate to large imbalance.
ROUGHLY_BALANCED_MIN_SHARE = 0.35
# A numeric target with more distinct values than this is a quantity to regress, not a class.
REGRESSION_MIN_DISTINCT = 20


@dataclass(frozen=True)
class DataProfile:
    """Facts about a validated frame that later steps and the report rely on."""

    task: str
    target: str
    n_rows: int
    n_columns: int
    classes: list[str]
    class_counts: dict[str, int]
    minority_share: float
    positive_label: str | None
    numeric_columns: list[str]
    categorical_columns: list[str]
    missing_per_column: dict[str, int]
    dropped_columns: dict[str, str] = field(default_factory=dict)
    dropped_target_rows: int = 0
    target_summary: dict[str, float] = field(default_factory=dict)
    # Every feature column's role and reason (tasks/data/roles.py); datetime columns are raw
    # inputs the pipeline expands into calendar features.
    column_roles: dict[str, ColumnRole] = field(default_factory=dict)
    datetime_columns: list[str] = field(default_factory=list)

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric_columns, *self.categorical_columns, *self.datetime_columns]

    @property
    def group_columns(self) -> list[str]:
        """Columns that look like keys of groups (patients, customers): candidates for a
        group-aware split."""
        return [name for name, role in self.column_roles.items() if role.role == "group_key"]

    @property
    def target_encoded_columns(self) -> list[str]:
        return [n for n, r in self.column_roles.items() if r.encoding == "target"]

    @property
    def roughly_balanced(self) -> bool:
        return self.minority_share >= ROUGHLY_BALANCED_MIN_SHARE


def target_labels(series: pd.Series) -> pd.Series:
    """Class labels as strings, so 0/1 and 'No'/'Yes' targets behave the same everywhere;
    surrounding spaces are not part of a label and an empty or blank label is missing."""
    if pd.api.types.is_float_dtype(series) and series.dropna().mod(1).eq(0).all():
        series = series.astype("Int64")
    labels = series.astype(str).where(series.notna()).astype("object")
    stripped = labels.where(labels.isna(), labels.str.strip())
    return stripped.where(stripped != "")


def infer_task(labels: pd.Series, requested: str) -> str:
    if requested != "auto":
        return requested
    return "binary" if labels.nunique() == 2 else "multiclass"


def column_kinds(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric columns (bools excluded) and everything else, which is encoded as categories."""
    numeric = [
        str(c)
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    categorical = [str(c) for c in frame.columns if str(c) not in numeric]
    return numeric, categorical


def holds_labels_or_integers(series: pd.Series) -> bool:
    """Identifiers are strings or whole numbers (a schema may have coerced them to float);
    measured floats are unique per row by nature."""
    if not pd.api.types.is_float_dtype(series):
        return True
    values = series.dropna()
    return bool(np.isfinite(values).all() and values.mod(1).eq(0).all())


def unusable_columns(features: pd.DataFrame) -> dict[str, str]:
    """Columns that cannot help a model, with the reason each is left out."""
    reasons: dict[str, str] = {}
    n_rows = len(features)
    for column in features.columns:
        series = features[column]
        distinct = series.nunique(dropna=True)
        if distinct == 0:
            reasons[str(column)] = "every value is empty"
        elif distinct == 1 and not series.isna().any():
            reasons[str(column)] = "it holds one constant value"
        elif n_rows >= 20 and distinct == n_rows and holds_labels_or_integers(series):
            reasons[str(column)] = "it is unique per row, like an identifier"
    return reasons


def reject_wide_table(features: pd.DataFrame, target: str) -> None:
    """More feature columns than labelled rows: nothing can be learned reliably (or it is
    transposed)."""
    n_rows, n_columns = features.shape
    if n_columns > n_rows:
        raise DataError(
            f"The data has more feature columns ({n_columns}) than rows with a '{target}' value "
            f"({n_rows}); a model cannot be fitted reliably (is the table transposed?)."
        )


def profile_notes(profile: DataProfile) -> list[str]:
    """Sentences for what profiling decided: rows without a target, columns left out, roles."""
    notes = []
    if profile.dropped_target_rows:
        notes.append(
            f"{profile.dropped_target_rows} row(s) with an empty '{profile.target}' are left out "
            "of training."
        )
    for column, reason in profile.dropped_columns.items():
        notes.append(f"Column '{column}' is left out of the model: {reason}.")
    notes += role_notes(profile.column_roles)
    if profile.group_columns:
        named = ", ".join(f"'{c}'" for c in profile.group_columns)
        notes.append(f"Likely group column(s) for a group-aware split: {named}.")
    if profile.positive_label is not None:
        notes.append(
            f"Positive class: '{profile.positive_label}' ({positive_rule(profile)}); binary "
            "metrics are about it."
        )
    return notes


def positive_rule(profile: DataProfile) -> str:
    counts = profile.class_counts
    if profile.positive_label == min(counts, key=lambda label: (counts[label], label)):
        return "the minority class, unless positive_label says otherwise"
    return "set by positive_label"


@dataclass(frozen=True)
class FeatureRoles:
    """The roles of a frame's feature columns, grouped the way the pipeline uses them."""

    roles: dict[str, ColumnRole]
    numeric: list[str]
    categorical: list[str]
    datetime: list[str]
    dropped: dict[str, str]


def feature_roles(features: pd.DataFrame, declared: Mapping[str, str] | None) -> FeatureRoles:
    roles = decide_roles(features, declared or {})
    return FeatureRoles(
        roles=roles,
        numeric=[n for n, r in roles.items() if r.encoding == "numeric"],
        categorical=[n for n, r in roles.items() if r.encoding in ("one_hot", "target")],
        datetime=[n for n, r in roles.items() if r.role == "datetime"],
        dropped={n: r.reason for n, r in roles.items() if r.role in LEFT_OUT_ROLES},
    )


def profile_summary(profile: DataProfile, load_notes: list[str]) -> dict[str, object]:
    """What the manifest says about left-out rows and columns, with every note as a sentence."""
    return {
        "dropped_target_rows": profile.dropped_target_rows,
        "dropped_columns": profile.dropped_columns,
        "notes": [*load_notes, *profile_notes(profile)],
    }


# YAML 1.1 reads yes/no/on/off as booleans: `positive_label: Yes` arrives as True.
YAML_TRUE = {"true", "yes", "y", "on"}
YAML_FALSE = {"false", "no", "n", "off"}


def match_label(requested: str, classes: list[str]) -> str | None:
    """The class a configured label means: exact, else the same spelling ignoring case and
    spaces, else the class a YAML boolean was written as (Yes -> True)."""
    if requested in classes:
        return requested
    folded = [c for c in classes if c.strip().lower() == requested.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    spellings = {"True": YAML_TRUE, "False": YAML_FALSE}.get(requested, set())
    booleans = [c for c in classes if c.strip().lower() in spellings]
    return booleans[0] if len(booleans) == 1 else None


def choose_positive_label(class_counts: dict[str, int], requested: str | None) -> str:
    """The configured positive label, else the minority class (what imbalance is about)."""
    if requested is not None:
        matched = match_label(requested, list(class_counts))
        if matched is None:
            known = ", ".join(sorted(class_counts))
            raise DataError(f"positive_label '{requested}' is not a class of the target ({known}).")
        return matched
    return min(class_counts, key=lambda label: (class_counts[label], label))


def profile_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    task: str = "auto",
    positive_label: str | None = None,
    drop_columns: list[str] | None = None,
    columns: Mapping[str, str] | None = None,
) -> DataProfile:
    """Profile a validated frame; raises DataError when the target cannot be learned.
    `columns` are the config's declared roles (name -> role)."""
    if target not in frame.columns:
        raise DataError(f"Target column '{target}' is not in the data.")
    if is_regression(frame[target], task):
        return profile_regression(frame, target, drop_columns, columns)
    labels = target_labels(frame[target])
    if labels.isna().all():
        raise DataError(f"Target column '{target}' is empty in every row.")
    labelled = labels.notna()
    class_counts = {str(k): int(v) for k, v in labels[labelled].value_counts().sort_index().items()}
    if len(class_counts) < 2:
        only = next(iter(class_counts))
        raise DataError(f"Target column '{target}' has a single class ('{only}'); need two.")
    features = frame.loc[labelled].drop(columns=[target, *(drop_columns or [])])
    reject_wide_table(features, target)
    roles = feature_roles(features, columns)
    resolved_task = infer_task(labels[labelled], task)
    positive = (
        choose_positive_label(class_counts, positive_label) if resolved_task == "binary" else None
    )
    counts = np.array(list(class_counts.values()))
    return DataProfile(
        task=resolved_task,
        target=target,
        n_rows=int(labelled.sum()),
        n_columns=frame.shape[1],
        classes=list(class_counts),
        class_counts=class_counts,
        minority_share=float(counts.min() / counts.sum()),
        positive_label=positive,
        numeric_columns=roles.numeric,
        categorical_columns=roles.categorical,
        missing_per_column=missing_counts(features),
        dropped_columns=roles.dropped,
        dropped_target_rows=int((~labelled).sum()),
        column_roles=roles.roles,
        datetime_columns=roles.datetime,
    )


def missing_counts(features: pd.DataFrame) -> dict[str, int]:
    counts = features.isna().sum().to_numpy()
    return {str(name): int(count) for name, count in zip(features.columns, counts, strict=True)}


def is_numeric_target(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def is_regression(series: pd.Series, requested: str) -> bool:
    """task: regression, or 'auto' with a numeric target of many distinct values."""
    if requested == "regression":
        if not is_numeric_target(series):
            raise DataError(
                f"Target column '{series.name}' is not numeric, so it cannot be regressed."
            )
        return True
    return (
        requested == "auto"
        and is_numeric_target(series)
        and series.nunique(dropna=True) > REGRESSION_MIN_DISTINCT
    )


def summarise_target(values: pd.Series) -> dict[str, float]:
    """The numbers that frame a regression's errors: an RMSE means little without the spread."""
    return {
        name: float(getattr(values, name)()) for name in ("mean", "std", "min", "median", "max")
    }


def profile_regression(
    frame: pd.DataFrame,
    target: str,
    drop_columns: list[str] | None = None,
    columns: Mapping[str, str] | None = None,
) -> DataProfile:
    """Profile for a numeric target: rows without a target are dropped (and counted)."""
    labelled = frame[target].notna()
    if labelled.sum() < 2:
        raise DataError(f"Target column '{target}' has fewer than two values to learn from.")
    features = frame.loc[labelled].drop(columns=[target, *(drop_columns or [])])
    roles = feature_roles(features, columns)
    return DataProfile(
        task="regression",
        target=target,
        n_rows=int(labelled.sum()),
        n_columns=frame.shape[1],
        classes=[],
        class_counts={},
        minority_share=1.0,  # no classes, so nothing to rebalance
        positive_label=None,
        numeric_columns=roles.numeric,
        categorical_columns=roles.categorical,
        missing_per_column=missing_counts(features),
        dropped_columns=roles.dropped,
        dropped_target_rows=int((~labelled).sum()),
        target_summary=summarise_target(frame.loc[labelled, target].astype(float)),
        column_roles=roles.roles,
        datetime_columns=roles.datetime,
    )
