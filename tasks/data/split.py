"""Split first: a seeded, stratified holdout, and the CV folds the search uses inside training."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import BaseCrossValidator, KFold, StratifiedKFold, train_test_split

from tasks.data.profile import DataProfile, target_labels
from tasks.errors import DataError

# Stratified splitting needs a class to have at least this many rows for a test share and folds.
MIN_ROWS_PER_CLASS = 3


@dataclass(frozen=True)
class DataSplit:
    """Raw feature columns and string labels; test rows are scored once, at the end."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def check_class_sizes(class_counts: dict[str, int], target: str) -> None:
    """A class too small to appear in both the test set and the folds is an error naming it."""
    for label, count in class_counts.items():
        if count < MIN_ROWS_PER_CLASS:
            raise DataError(
                f"Class '{label}' of target '{target}' has only {count} row(s); "
                f"at least {MIN_ROWS_PER_CLASS} are needed to split and cross-validate."
            )


def split_frame(
    frame: pd.DataFrame, profile: DataProfile, test_size: float, seed: int
) -> DataSplit:
    """Stratified holdout of the labelled rows, keeping the original row index."""
    if profile.task == "regression":
        return split_regression_frame(frame, profile, test_size, seed)
    check_class_sizes(profile.class_counts, profile.target)
    labels = target_labels(frame[profile.target])
    labelled = labels.notna()
    features = frame.loc[labelled, profile.feature_columns]
    y = labels[labelled]
    X_train, X_test, y_train, y_test = train_test_split(
        features, y, test_size=test_size, stratify=y, random_state=seed
    )
    return DataSplit(X_train, X_test, y_train, y_test)


def fold_count(y_train: pd.Series, requested: int) -> tuple[int, str | None]:
    """The folds to use: as requested, or fewer (with the reason) when a class is smaller."""
    smallest = int(y_train.value_counts().min())
    if smallest >= requested:
        return requested, None
    label = str(y_train.value_counts().idxmin())
    note = (
        f"class '{label}' has {smallest} training rows, fewer than the {requested} folds "
        "asked for; "
        f"used {smallest} folds so every fold holds it."
    )
    return smallest, note


def make_folds(
    y_train: pd.Series, requested: int, seed: int, task: str = "binary"
) -> tuple[BaseCrossValidator, str | None]:
    """Seeded stratified folds; the seed is the config's, like every other source of randomness."""
    if task == "regression":
        return make_regression_folds(y_train, requested, seed)
    n_splits, note = fold_count(y_train, requested)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed), note


def split_regression_frame(
    frame: pd.DataFrame, profile: DataProfile, test_size: float, seed: int
) -> DataSplit:
    """Plain seeded random holdout of the rows with a target (no classes to stratify on)."""
    labelled = frame[profile.target].notna()
    features = frame.loc[labelled, profile.feature_columns]
    y = frame.loc[labelled, profile.target].astype(float)
    X_train, X_test, y_train, y_test = train_test_split(
        features, y, test_size=test_size, random_state=seed
    )
    return DataSplit(X_train, X_test, y_train, y_test)


def make_regression_folds(
    y_train: pd.Series, requested: int, seed: int
) -> tuple[KFold, str | None]:
    """Shuffled, seeded K-fold (not stratified: a continuous target has no classes)."""
    if len(y_train) >= requested:
        return KFold(n_splits=requested, shuffle=True, random_state=seed), None
    note = f"only {len(y_train)} training rows, fewer than the {requested} folds asked for."
    if len(y_train) < 2:
        raise DataError(f"Target '{y_train.name}' has too few training rows to cross-validate.")
    return KFold(n_splits=len(y_train), shuffle=True, random_state=seed), note
