"""Split first: a seeded, stratified holdout, and the CV folds the search uses inside training."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from tasks.data import DataError
from tasks.profile import DataProfile, target_labels

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


def make_folds(y_train: pd.Series, requested: int, seed: int) -> tuple[StratifiedKFold, str | None]:
    """Seeded stratified folds; the seed is the config's, like every other source of randomness."""
    n_splits, note = fold_count(y_train, requested)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed), note
