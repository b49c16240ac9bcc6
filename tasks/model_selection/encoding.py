"""What the columns become before a model sees them, and what that costs.

`PrepareColumns` is the pipeline's first data step: stateless (it learns nothing, so it cannot
leak), it turns each datetime column into calendar numbers and every categorical column into text
labels (so 1, 1.0 and "1" are one level). `plan_encoding` estimates the encoded width and one CV
fold's design matrix before anything is fitted, and reduces the encoding when it would exceed the
memory budget. `feasible_families` skips the families that cannot cope with the data's size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from tasks.config import EncodingConfig
from tasks.data.profile import DataProfile
from tasks.data.roles import ColumnRole, is_number_column, parse_datetimes, whole_numbers

# (raw column, its format, calendar part, the derived column's name)
DateSpec = tuple[str, str, str, str]
# HistGradientBoosting bins a native category per level; it allows fewer than 255.
NATIVE_MAX_CATEGORIES = 250
BYTES_PER_CELL = 8  # float64
# Kernel SVM fits grow with the square of the rows: past this many, hours, not minutes.
SVM_MAX_TRAIN_ROWS = 20_000
# k-NN scores each validation row against every training row over every encoded column.
KNN_MAX_COST = 1e12  # training rows squared times encoded width


def calendar_values(parsed: pd.Series, part: str) -> pd.Series:
    """One calendar part as numbers (NaN where the date did not parse); hour includes minutes."""
    if part == "hour":
        values = parsed.dt.hour + parsed.dt.minute / 60
    elif part == "weekday":
        values = parsed.dt.day_of_week
    else:
        values = getattr(parsed.dt, part)
    return values.astype(float)


def as_text(series: pd.Series) -> pd.Series:
    """Category labels as text, gaps kept as NaN: whole-number codes lose their '.0'."""
    if is_number_column(series) and whole_numbers(series):
        text = series.astype("Int64").astype(str)
    else:
        text = series.astype(str)
    return text.astype(object).where(series.notna().to_numpy(), np.nan)


class PrepareColumns(TransformerMixin, BaseEstimator):
    """Dates into calendar numbers, categories into text; learns nothing from the rows."""

    def __init__(self, dates: tuple[DateSpec, ...] = (), categorical: list[str] | None = None):
        self.dates = dates
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y: Any = None) -> PrepareColumns:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        prepared = X.copy()
        for column in dict.fromkeys(spec[0] for spec in self.dates):
            specs = [spec for spec in self.dates if spec[0] == column]
            parsed = parse_datetimes(X[column], specs[0][1])
            for _, _, part, name in specs:
                prepared[name] = calendar_values(parsed, part).to_numpy()
        prepared = prepared.drop(columns=list(dict.fromkeys(spec[0] for spec in self.dates)))
        for column in self.categorical or []:
            prepared[column] = as_text(X[column]).to_numpy()
        return prepared

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return input_features


@dataclass(frozen=True)
class FeatureLayout:
    """How the pipeline treats the columns: dates expanded, which categories go by target
    statistics, and the one-hot bounds."""

    dates: tuple[DateSpec, ...] = ()
    target_encoded: tuple[str, ...] = ()
    max_one_hot: int = 30
    min_frequency: int = 5
    sparse: bool = False
    seed: int = 0
    task: str = "binary"

    def target_encoder(self) -> TargetEncoder:
        """Cross-fitted target statistics on seeded, shuffled folds (stratified for classes)."""
        splitter = KFold if self.task == "regression" else StratifiedKFold
        return TargetEncoder(cv=splitter(5, shuffle=True, random_state=self.seed))

    @property
    def calendar_columns(self) -> list[str]:
        return [spec[3] for spec in self.dates]

    @property
    def max_native_categories(self) -> int:
        return NATIVE_MAX_CATEGORIES

    def split_categorical(self, categorical: list[str]) -> tuple[list[str], list[str]]:
        """(one-hot or native codes, target statistics), each in the given order."""
        by_target = [c for c in categorical if c in self.target_encoded]
        return [c for c in categorical if c not in self.target_encoded], by_target


@dataclass(frozen=True)
class EncodingPlan:
    """The encoded width and one fold's design matrix, estimated before fitting."""

    encoded_width: int
    fold_rows: int
    fold_megabytes: float
    budget_megabytes: int
    max_one_hot: int
    sparse: bool
    one_hot_columns: int
    target_encoded_columns: list[str] = field(default_factory=list)
    calendar_features: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def prepared_bytes(plan: EncodingPlan, n_rows: int) -> int:
    """At most the bytes of n_rows prepared by any family's data steps, dense (the widest
    encoding, one-hot), with their index: the size `prepared.data_bytes` measures."""
    return n_rows * (plan.encoded_width + 1) * BYTES_PER_CELL


def derived_names(roles: Mapping[str, ColumnRole], taken: list[str]) -> tuple[DateSpec, ...]:
    """A calendar column per date part, named '<column>__<part>', never clashing with a name in
    the data."""
    used = set(taken)
    specs: list[DateSpec] = []
    for column, role in roles.items():
        if role.role != "datetime" or role.datetime_format is None:
            continue
        for part in role.calendar_parts:
            name = f"{column}__{part}"
            while name in used:
                name += "_"
            used.add(name)
            specs.append((column, role.datetime_format, part, name))
    return tuple(specs)


def encoded_width(
    levels: Mapping[str, int], n_numbers: int, n_target: int, target_width: int, cap: int
) -> int:
    return n_numbers + sum(min(count, cap) for count in levels.values()) + n_target * target_width


def plan_encoding(
    profile: DataProfile,
    X_train: pd.DataFrame,
    settings: EncodingConfig,
    cv_folds: int,
) -> EncodingPlan:
    """Width and memory of one fold's one-hot design matrix; when over the budget, fewer one-hot
    columns per category, then sparse output, each with a note."""
    taken = [*X_train.columns.map(str)]
    dates = derived_names(profile.column_roles, taken)
    target_cols = [c for c in profile.target_encoded_columns if c in profile.categorical_columns]
    one_hot_cols = [c for c in profile.categorical_columns if c not in target_cols]
    levels = {c: int(X_train[c].nunique(dropna=False)) for c in one_hot_cols}
    n_numbers = len(profile.numeric_columns) + len(dates)
    target_width = len(profile.classes) if profile.task == "multiclass" else 1
    fold_rows = math.ceil(len(X_train) * (cv_folds - 1) / max(cv_folds, 1))
    budget = settings.memory_budget_mb

    def megabytes(cap: int) -> float:
        width = encoded_width(levels, n_numbers, len(target_cols), target_width, cap)
        return fold_rows * width * BYTES_PER_CELL / 2**20

    cap, notes = settings.max_one_hot, []
    while megabytes(cap) > budget and cap > 2:
        cap = max(2, cap // 2)
    if cap != settings.max_one_hot:
        notes.append(
            f"A fold's design matrix would exceed the {budget} MB budget with "
            f"{settings.max_one_hot} one-hot columns per category; capped at {cap} (the rarer "
            "levels are grouped)."
        )
    sparse = megabytes(cap) > budget
    if sparse:
        notes.append(
            f"A fold's design matrix is still over the {budget} MB budget "
            f"({megabytes(cap):.0f} MB dense); one-hot columns are kept sparse."
        )
    return EncodingPlan(
        encoded_width=encoded_width(levels, n_numbers, len(target_cols), target_width, cap),
        fold_rows=fold_rows,
        fold_megabytes=round(megabytes(cap), 2),
        budget_megabytes=budget,
        max_one_hot=cap,
        sparse=sparse,
        one_hot_columns=sum(min(count, cap) for count in levels.values()),
        target_encoded_columns=target_cols,
        calendar_features=[spec[3] for spec in dates],
        notes=notes,
    )


def layout_for(
    profile: DataProfile,
    X_train: pd.DataFrame,
    plan: EncodingPlan,
    settings: EncodingConfig,
    seed: int,
) -> FeatureLayout:
    """The pipeline's column treatment for this profile and plan."""
    return FeatureLayout(
        dates=derived_names(profile.column_roles, [*X_train.columns.map(str)]),
        target_encoded=tuple(plan.target_encoded_columns),
        max_one_hot=plan.max_one_hot,
        min_frequency=settings.min_frequency,
        sparse=plan.sparse,
        seed=seed,
        task=profile.task,
    )


def feasible_families(
    families: list[str], n_train: int, width: int, *, explicit: bool
) -> tuple[list[str], dict[str, str]]:
    """The families worth running at this size; the others with the reason. Families the config
    names explicitly always run (the user asked for them)."""
    skipped: dict[str, str] = {}
    if not explicit:
        if "svm" in families and n_train > SVM_MAX_TRAIN_ROWS:
            skipped["svm"] = (
                f"kernel SVM fits grow with the square of the rows; {n_train} training rows "
                f"are over {SVM_MAX_TRAIN_ROWS}"
            )
        if "knn" in families and n_train**2 * width > KNN_MAX_COST:
            skipped["knn"] = (
                f"k-NN compares every row with all {n_train} training rows over {width} "
                "encoded columns: too slow to cross-validate"
            )
    kept = [family for family in families if family not in skipped]
    return kept or families, skipped if kept else {}
