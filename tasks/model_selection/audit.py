"""The leakage audit: what every fitted step actually saw, per CV fold and for the final refit.

Two passthrough `FitAudit` steps ride in the pipeline (before imputation and after resampling)
and remember the rows their fit received. The audit re-fits the selected candidate's data steps on
each training fold of the search's own splitter, reads those records, and *computes*
whether any validation or test row reached a fit: nothing here is assumed from the design.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils.parallel import Parallel, delayed

from tasks.data.split import fast_labels
from tasks.model_selection.parallel import WorkerJob, begin_worker_job, start_in_worker

INPUT_AUDIT = "audit_input"
RESAMPLED_AUDIT = "audit_resampled"


def row_hashes(X: Any) -> np.ndarray:
    """One hash per row of its content and index label: a row's hash depends on that row alone,
    so the hashes of some rows are those rows' entries of the whole table's hashes."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    return pd.util.hash_pandas_object(frame, index=True).to_numpy()


def fingerprint_of(hashes: np.ndarray) -> str:
    """sha256 of row hashes in sorted order (order-independent), shortened for reading."""
    return hashlib.sha256(np.sort(hashes).tobytes()).hexdigest()[:16]


def rows_fingerprint(X: Any) -> str:
    """sha256 of the rows' content and index (order-independent), shortened for reading."""
    return fingerprint_of(row_hashes(X))


def label_counts(y: Any) -> dict[str, int]:
    """Rows per class; nothing for a missing or numeric (regression) target."""
    if y is None or pd.api.types.is_float_dtype(np.asarray(y)):
        return {}
    values, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


class FitAudit(TransformerMixin, BaseEstimator):
    """Passes data through unchanged; its fit remembers which rows (and classes) it received."""

    def fit(self, X: Any, y: Any = None) -> FitAudit:
        self.n_rows_ = len(X)
        self.fingerprint_ = rows_fingerprint(X)
        self.class_counts_ = label_counts(y)
        self.row_index_: np.ndarray | None = (
            np.asarray(X.index) if isinstance(X, pd.DataFrame) else None
        )
        return self

    def transform(self, X: Any) -> Any:
        return X

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return input_features


def fitted_members(model: Any) -> list[tuple[str, Any]]:
    """The fitted member pipelines of a voting ensemble (tasks/model_selection/ensemble.py);
    empty for a single pipeline."""
    members = getattr(model, "estimators_", None)
    if not isinstance(model, Pipeline) and isinstance(members, list):
        return [(name, member) for (name, _), member in zip(model.estimators, members, strict=True)]
    return []


def forget_training_rows(model: Any) -> Any:
    """Drop the row identifiers the audit steps kept, so a saved model carries no training ids
    (in every member of an ensemble too)."""
    for _, member in fitted_members(model):
        forget_training_rows(member)
    steps = getattr(model, "named_steps", {})
    for name in (INPUT_AUDIT, RESAMPLED_AUDIT):
        if name in steps:
            steps[name].row_index_ = None
    return model


def overlap(rows: np.ndarray | None, other: pd.Index) -> int:
    """How many of `rows` are in `other` (-1 when the rows are unknown)."""
    if rows is None:
        return -1
    return int(pd.Index(rows).isin(other).sum())


def step_record(audit: FitAudit) -> dict[str, Any]:
    return {"rows": audit.n_rows_, "fingerprint": audit.fingerprint_}


@dataclass(frozen=True)
class TrainFold:
    """One CV fold's training rows as the audit compares fits with them: computed once per fold,
    for the fold's refit and every shared preparation fitted on it (hashing the rows was a third
    of the audit's time when each record did it again)."""

    rows: pd.Index  # sorted
    fingerprint: str

    @classmethod
    def of(cls, X_train: pd.DataFrame, hashes: np.ndarray, train: np.ndarray) -> TrainFold:
        """The fold of rows `train`, from every row's hashes (row_hashes(X_train): the table
        hashed once for all of its folds)."""
        return cls(X_train.index[train].sort_values(), fingerprint_of(hashes[train]))

    def summary(self) -> dict[str, Any]:
        return {"rows": len(self.rows), "fingerprint": self.fingerprint}

    def equals(self, fit_rows: np.ndarray | None) -> bool:
        """Did a fit see exactly these rows (False when its rows are unknown)?"""
        return fit_rows is not None and bool(pd.Index(fit_rows).sort_values().equals(self.rows))


def fold_record(
    model: Pipeline,
    train_fold: TrainFold,
    validation_rows: pd.Index,
    test_rows: pd.Index,
    y_validation: pd.Series,
) -> dict[str, Any]:
    """What each fitted step of one fold's pipeline saw, and the overlaps that would be leakage."""
    seen = model.named_steps[INPUT_AUDIT]
    resampled = model.named_steps[RESAMPLED_AUDIT]
    return {
        "fitted_steps": {
            "imputer": step_record(seen),
            "sampler": step_record(seen),
            "encoder_and_scaler": step_record(resampled),
            "model": step_record(resampled),
        },
        "train_fold": train_fold.summary(),
        "fit_rows_equal_train_fold": train_fold.equals(seen.row_index_),
        "class_counts_before_resampling": seen.class_counts_,
        "class_counts_after_resampling": resampled.class_counts_,
        "validation_class_counts": label_counts(y_validation),
        "validation_rows_in_fit": overlap(seen.row_index_, validation_rows),
        "test_rows_in_fit": overlap(seen.row_index_, test_rows),
    }


def fit_fold_data_steps(
    data_steps: Pipeline, X: pd.DataFrame, y: np.ndarray, train: np.ndarray
) -> Pipeline:
    """Fitted on the fold's training rows, taken here: the parent sends all rows once (joblib
    shares their arrays), not a copy per fold."""
    begin_worker_job()
    return clone(data_steps).fit(X.iloc[train], y[train])


def fit_folds_data_steps(
    data_steps: Pipeline, X: pd.DataFrame, y: np.ndarray, trains: list[np.ndarray]
) -> list[Pipeline]:
    """fit_fold_data_steps for each fold's training rows, one after another."""
    return [fit_fold_data_steps(data_steps, X, y, train) for train in trains]


FoldRefits = list[tuple[Pipeline, np.ndarray, np.ndarray]]


def fit_data_steps(
    model: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    folds: BaseCrossValidator,
    n_jobs: int = 1,
) -> FoldRefits:
    """Each fold's data-learning steps (imputer, sampler, encoder and scaler) of `model` (fitted
    or not: its steps are cloned) fitted on the same folds the search used, side by side in n_jobs
    processes (the search's pool). The model step is not re-fitted: within a fit it learns from
    exactly the sampler's output, which the second audit step records (and the final refit shows
    directly)."""
    splits = list(folds.split(X_train, y_train))
    labels = fast_labels(y_train)
    fitted = Parallel(n_jobs=n_jobs, pre_dispatch=n_jobs, batch_size=1)(
        delayed(fit_fold_data_steps)(model[:-1], X_train, labels, train) for train, _ in splits
    )
    return [
        (model, train, validation)
        for model, (train, validation) in zip(fitted, splits, strict=True)
    ]


@dataclass(frozen=True)
class StartedFoldRefits:
    """fit_data_steps' refits, running one fold after another in one local CV worker."""

    job: WorkerJob[list[Pipeline]]
    splits: list[tuple[np.ndarray, np.ndarray]]

    def result(self) -> FoldRefits:
        return [
            (model, train, validation)
            for model, (train, validation) in zip(self.job.result(), self.splits, strict=True)
        ]


def start_fold_refits(
    model: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    folds: BaseCrossValidator,
    n_jobs: int,
) -> StartedFoldRefits:
    """fit_data_steps as one job in the search's pool of n_jobs processes, queued now (not
    through a task thread, which queued it behind every job sent meanwhile); one fold's copy at
    a time, as more at once would raise the run's memory peak (1M rows: two at once, +250 MB)."""
    splits = list(folds.split(X_train, y_train))
    trains = [train for train, _ in splits]
    job = start_in_worker(
        fit_folds_data_steps, model[:-1], X_train, fast_labels(y_train), trains, n_jobs=n_jobs
    )
    return StartedFoldRefits(job, splits)


def shared_groups(groups: pd.Series, fit_rows: pd.Index, evaluation_rows: pd.Index) -> int:
    """How many groups have rows on both sides (must be 0 when the split keeps groups whole)."""
    fitted = set(groups.loc[fit_rows])
    return len(fitted.intersection(groups.loc[evaluation_rows]))


def iso_or_number(value: Any) -> Any:
    return value.isoformat() if isinstance(value, pd.Timestamp) else float(value)


def time_order(times: pd.Series, fit_rows: pd.Index, evaluation_rows: pd.Index) -> dict[str, Any]:
    """The latest fitted time and the earliest evaluated time (fit must be strictly earlier)."""
    latest, earliest = times.loc[fit_rows].max(), times.loc[evaluation_rows].min()
    return {
        "latest_fit_time": iso_or_number(latest),
        "earliest_evaluation_time": iso_or_number(earliest),
        "fit_before_evaluation": bool(latest < earliest),
    }


def split_checks(
    groups: pd.Series | None,
    times: pd.Series | None,
    fit_rows: pd.Index,
    evaluation_rows: pd.Index,
) -> dict[str, Any]:
    """Group overlap or time order between fit and evaluation rows, when the split uses them."""
    checks: dict[str, Any] = {}
    if groups is not None:
        checks["groups_shared"] = shared_groups(groups, fit_rows, evaluation_rows)
    if times is not None and len(fit_rows) and len(evaluation_rows):
        checks.update(time_order(times, fit_rows, evaluation_rows))
    return checks


def split_checks_pass(records: list[dict[str, Any]]) -> bool:
    return all(
        record.get("groups_shared", 0) == 0 and record.get("fit_before_evaluation", True)
        for record in records
    )


def shared_preparation_record(
    record: Any, train_fold: TrainFold, validation_rows: pd.Index, test_rows: pd.Index
) -> dict[str, Any]:
    """A preparation the search fitted once on a fold and reused for many candidates: the rows
    its fit saw, compared with that fold's training rows, its validation rows and the test rows."""
    return {
        **record.summary(),
        "train_fold": train_fold.summary(),
        "fit_rows_equal_train_fold": train_fold.equals(record.row_index),
        "validation_rows_in_fit": overlap(record.row_index, validation_rows),
        "test_rows_in_fit": overlap(record.row_index, test_rows),
    }


def audit_leakage(
    final_model: Pipeline,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    folds: BaseCrossValidator,
    X_threshold_fit: pd.DataFrame | None = None,
    *,
    groups: pd.Series | None = None,
    times: pd.Series | None = None,
    shared_preparations: list[Any] | None = None,
    n_jobs: int = 1,
    fold_refits: FoldRefits | None = None,
) -> dict[str, Any]:
    """Re-fit the selected candidate's data steps per fold and report what every fitted step saw
    (and, for a split by groups or time, the groups shared and the time order per fold); with
    `shared_preparations` (tasks/model_selection/prepared.py records), also what each fold
    preparation the search fitted once and shared across candidates saw. `fold_refits`: those
    re-fits made already from this model's unfitted pipeline (fit_data_steps). An ensemble is
    audited member by member."""
    if fitted_members(final_model):
        return audit_ensemble(
            final_model,
            X_train,
            y_train,
            X_test,
            folds,
            X_threshold_fit,
            shared_preparations,
            groups=groups,
            times=times,
            n_jobs=n_jobs,
        )
    refits = fold_refits or fit_data_steps(final_model, X_train, y_train, folds, n_jobs)
    test_rows = X_test.index
    hashes = row_hashes(X_train)
    train_folds = [TrainFold.of(X_train, hashes, train) for _, train, _ in refits]
    validation_rows = [X_train.index[validation] for _, _, validation in refits]
    shared = [
        shared_preparation_record(
            record, train_folds[record.fold], validation_rows[record.fold], test_rows
        )
        for record in shared_preparations or []
    ]
    folds_report = [
        {
            **fold_record(model, fold, validation_rows[i], test_rows, y_train.iloc[validation]),
            **split_checks(groups, times, X_train.index[train], validation_rows[i]),
        }
        for i, ((model, train, validation), fold) in enumerate(
            zip(refits, train_folds, strict=True)
        )
    ]
    final_seen = final_model.named_steps[INPUT_AUDIT]
    final = {
        "fitted_steps": {
            "imputer": step_record(final_seen),
            "sampler": step_record(final_seen),
            "encoder_and_scaler": step_record(final_model.named_steps[RESAMPLED_AUDIT]),
            "model": step_record(final_model.named_steps[RESAMPLED_AUDIT]),
        },
        "class_counts_before_resampling": final_seen.class_counts_,
        "class_counts_after_resampling": final_model.named_steps[RESAMPLED_AUDIT].class_counts_,
        "test_rows_in_fit": overlap(final_seen.row_index_, test_rows),
    }
    threshold = None
    if X_threshold_fit is not None:
        threshold = {
            "rows": len(X_threshold_fit),
            "fingerprint": rows_fingerprint(X_threshold_fit),
            "test_rows_in_fit": int(X_threshold_fit.index.isin(test_rows).sum()),
        }
    leaks = [f["validation_rows_in_fit"] for f in folds_report]
    leaks += [f["test_rows_in_fit"] for f in folds_report]
    leaks += [final["test_rows_in_fit"], threshold["test_rows_in_fit"] if threshold else 0]
    test_set = {
        "rows": len(test_rows),
        "fingerprint": rows_fingerprint(X_test),
        **split_checks(groups, times, X_train.index, test_rows),
    }
    leaks += [p["validation_rows_in_fit"] for p in shared] + [p["test_rows_in_fit"] for p in shared]
    return {
        "test_set": test_set,
        "cv_folds": folds_report,
        "shared_preparations": shared,
        "final_refit": final,
        "threshold": threshold,
        "checked": all(value >= 0 for value in leaks),
        "no_leakage_found": all(value == 0 for value in leaks)
        and all(f["fit_rows_equal_train_fold"] for f in folds_report)
        and split_checks_pass([*folds_report, test_set])
        and all(p["fit_rows_equal_train_fold"] for p in shared),
    }


def audit_ensemble(
    final_model: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    folds: BaseCrossValidator,
    X_threshold_fit: pd.DataFrame | None,
    shared_preparations: list[Any] | None,
    *,
    groups: pd.Series | None = None,
    times: pd.Series | None = None,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Every member pipeline audited as a single candidate would be (its data steps re-fitted on
    the same folds, its own fit on all training rows); the verdict holds only if it holds for
    every member and every shared preparation."""
    members = {
        name: audit_leakage(
            member,
            X_train,
            y_train,
            X_test,
            folds,
            X_threshold_fit,
            groups=groups,
            times=times,
            n_jobs=n_jobs,
        )
        for name, member in fitted_members(final_model)
    }
    splits = list(folds.split(X_train, y_train))
    hashes = row_hashes(X_train)
    train_folds = [TrainFold.of(X_train, hashes, train) for train, _ in splits]
    shared = [
        shared_preparation_record(
            record,
            train_folds[record.fold],
            X_train.index[splits[record.fold][1]],
            X_test.index,
        )
        for record in shared_preparations or []
    ]
    first = next(iter(members.values()))
    shared_clean = all(
        p["validation_rows_in_fit"] == 0
        and p["test_rows_in_fit"] == 0
        and p["fit_rows_equal_train_fold"]
        for p in shared
    )
    return {
        "test_set": first["test_set"],
        "ensemble_members": {
            name: {key: report[key] for key in ("cv_folds", "final_refit")}
            for name, report in members.items()
        },
        "shared_preparations": shared,
        "threshold": first["threshold"],
        "checked": all(r["checked"] for r in members.values())
        and all(p["validation_rows_in_fit"] >= 0 for p in shared),
        "no_leakage_found": all(r["no_leakage_found"] for r in members.values()) and shared_clean,
    }
