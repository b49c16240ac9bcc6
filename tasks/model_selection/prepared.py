"""Prepare each fold once: the data steps every candidate shares are fitted once per fold.

GridSearchCV refits the whole pipeline for every candidate, so the same imputer and encoder are
fitted on the same training fold once per candidate of every family. Here a candidate's pipeline
is cut in two: its *preparation* (the leading steps that no candidate parameter changes and that
resample nothing: imputation, and encoding/scaling when no sampler comes before it) and the *rest*
(the sampler, if any, and the model). Each distinct preparation is fitted once per fold on that
fold's training rows only, every training row is transformed with it, and every candidate that
shares it fits its rest on the fold's prepared training rows and is scored on the fold's prepared
validation rows. Transforming is row by row, so the scores equal GridSearchCV's to the last bit.

The preparations live in a `FoldPreparations` store that concurrent families share (one lock per
preparation and fold), and each prepared fold keeps a record of the rows its fit saw, which the
leakage audit checks against the fold (tasks/model_selection/audit.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import clone, is_classifier

from tasks.data.split import fast_labels
from tasks.memory import return_freed_memory
from tasks.model_selection.audit import INPUT_AUDIT, FitAudit
from tasks.model_selection.budget import REFIT_MARGIN, BudgetCut, SearchBudget
from tasks.model_selection.hgb_binning import use_fast_weighted_binning
from tasks.model_selection.parallel import ClusterStop, begin_worker_job

PASSTHROUGH = ("passthrough", None)


@dataclass
class PreparedFold:
    """One fold's fitted preparation and every training row transformed by it."""

    fold: int
    train: np.ndarray
    validation: np.ndarray
    preparation: Pipeline
    data: Any  # all training rows; the rows in `validation` were only transformed, never fitted
    fit_seconds: float


@dataclass
class PreparationRecord:
    """What one shared preparation's fit saw on one fold (the audit computes overlaps from it)."""

    key: str
    steps: list[str]
    fold: int
    rows: int
    fingerprint: str
    row_index: np.ndarray | None
    fit_seconds: float
    candidates: int = 0  # how many candidate fits reused this fitted preparation
    fits: int = 1  # more than 1 only when the store evicted it for memory and it was refitted

    def summary(self) -> dict[str, Any]:
        return {
            "preparation": self.key,
            "steps": self.steps,
            "fold": self.fold,
            "rows": self.rows,
            "fingerprint": self.fingerprint,
            "candidates_reusing": self.candidates,
            "fits": self.fits,
        }


def is_sampler(step: Any) -> bool:
    return hasattr(step, "fit_resample")


def preparation_length(pipeline: Pipeline, params: dict[str, Any]) -> int:
    """How many leading steps a candidate shares with every other: the steps before the first
    one its parameters change, the first sampler, and the final estimator."""
    changed = {key.split("__", 1)[0] for key in params if "__" in key}
    replaced = {key for key, value in params.items() if "__" not in key}
    for position, (name, step) in enumerate(pipeline.steps[:-1]):
        current = params[name] if name in replaced else step
        if name in changed or is_sampler(current):
            return position
        if name in replaced and not (current in PASSTHROUGH and step in PASSTHROUGH):
            return position
    return len(pipeline.steps) - 1


def preparation_key(preparation: Pipeline) -> str:
    """Equal for preparations built with equal steps and parameters (shared across families)."""
    return str(joblib.hash(preparation))[:12]


def take_rows(data: Any, rows: np.ndarray) -> Any:
    return data.iloc[rows] if isinstance(data, pd.DataFrame | pd.Series) else data[rows]


def fit_preparation(
    preparation: Pipeline, X: pd.DataFrame, y: Any, train: np.ndarray
) -> tuple[Pipeline, Any, float]:
    """Fit on the fold's training rows only; transform every training row with the result."""
    begin_worker_job()
    started = time.perf_counter()
    fitted = clone(preparation).fit(X.iloc[train], take_rows(y, train))
    seconds = time.perf_counter() - started
    return fitted, fitted.transform(X), seconds


def audit_of(preparation: Pipeline) -> FitAudit | None:
    step = dict(preparation.steps).get(INPUT_AUDIT)
    return step if isinstance(step, FitAudit) else None


class FoldPreparations:
    """Fitted preparations per (preparation, fold), shared by the families of one search.

    Thread-safe: concurrent families ask for the same preparation, one fits it, the others wait
    and reuse it. The prepared rows are kept up to `max_bytes` in all, least recently used out
    first (an evicted fold is prepared again if asked for: the same rows give the same fit), so
    memory stays bounded at a million rows. Pickling (a Dask worker) sends an empty store: each
    remote family prepares its own folds, and its records travel back in its result.
    `expected_fold_bytes`: an upper estimate of one prepared fold's size, known before fitting
    (the encoding plan's), with which a search can prepare every fold at once."""

    def __init__(
        self,
        n_jobs: int = 1,
        max_bytes: int | None = None,
        expected_fold_bytes: int | None = None,
    ) -> None:
        self.n_jobs = n_jobs
        self.max_bytes = max_bytes
        self.expected_fold_bytes = expected_fold_bytes
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, int], threading.Lock] = {}
        self._folds: OrderedDict[tuple[str, int], PreparedFold] = OrderedDict()
        self.records: dict[tuple[str, int], PreparationRecord] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {
            "n_jobs": self.n_jobs,
            "max_bytes": self.max_bytes,
            "expected_fold_bytes": self.expected_fold_bytes,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def prepared_fold(
        self,
        preparation: Pipeline,
        X: pd.DataFrame,
        y: Any,
        splits: list[tuple[np.ndarray, np.ndarray]],
        fold: int,
    ) -> PreparedFold:
        """The fold prepared with `preparation`, fitted now unless it is in the store."""
        return self.prepared_folds(preparation, X, y, splits, [fold])[0]

    def prepared_folds(
        self,
        preparation: Pipeline,
        X: pd.DataFrame,
        y: Any,
        splits: list[tuple[np.ndarray, np.ndarray]],
        folds: list[int],
    ) -> list[PreparedFold]:
        """These folds prepared with `preparation`; the ones not in the store are fitted now, in
        parallel. Another thread asking for the same folds waits and reuses them."""
        key = preparation_key(preparation)
        with self._lock:  # one lock per (preparation, fold), always taken in fold order
            locks = [self._key_locks.setdefault((key, k), threading.Lock()) for k in sorted(folds)]
        for lock in locks:
            lock.acquire()
        try:
            with self._lock:
                found = {k: self._folds[(key, k)] for k in folds if (key, k) in self._folds}
                for k in found:
                    self._folds.move_to_end((key, k))
            missing = [k for k in folds if k not in found]
            # In the pool even one fold at a time: a preparation in a task thread holds the
            # main process's GIL while the workers wait (a million rows: 10 s a fold).
            fitted = joblib.Parallel(n_jobs=self.n_jobs if missing else 1)(
                joblib.delayed(fit_preparation)(preparation, X, y, splits[k][0]) for k in missing
            )
            if missing and self.n_jobs > 1:
                # The pickled matrices they came in as, freed but kept by glibc, at the search's
                # peak: 100k rows, class weights, 1,329 -> 1,279 MB.
                return_freed_memory()
            with self._lock:
                for k, (model, data, seconds) in zip(missing, fitted, strict=True):
                    train, validation = splits[k]
                    found[k] = PreparedFold(k, train, validation, model, data, seconds)
                    self._folds[(key, k)] = found[k]
                    self._remember(key, k, model, seconds)
                self._evict()
            return [found[k] for k in folds]
        finally:
            for lock in locks:
                lock.release()

    def holds_all(self, bytes_per_fold: int, n_folds: int) -> bool:
        """Would every fold's prepared rows fit in the store at once?"""
        return self.max_bytes is None or bytes_per_fold * n_folds <= self.max_bytes

    def surely_holds_all(self, preparations: int, n_folds: int) -> bool:
        """Do the estimate's folds of this many preparations fit at once (known before fitting)?"""
        if self.expected_fold_bytes is None:
            return False
        return self.holds_all(self.expected_fold_bytes * preparations, n_folds)

    def _remember(self, key: str, fold: int, model: Pipeline, seconds: float) -> None:
        earlier = self.records.get((key, fold))
        record = record_of(key, model, fold, seconds)
        if earlier is not None:  # prepared again after eviction: same rows, one more fit
            record.fits = earlier.fits + 1
            record.candidates = earlier.candidates
            record.fit_seconds += earlier.fit_seconds
        self.records[(key, fold)] = record

    def _evict(self) -> None:
        if self.max_bytes is None:
            return
        while (
            len(self._folds) > 1
            and sum(data_bytes(f.data) for f in self._folds.values()) > self.max_bytes
        ):
            self._folds.popitem(last=False)

    def count_reuse(self, key: str, fold: int, candidates: int) -> None:
        with self._lock:
            self.records[(key, fold)].candidates += candidates

    def release_data(self) -> None:
        """Drop the prepared matrices (the records stay for the audit)."""
        with self._lock:
            self._folds.clear()


# Prepared rows kept at once: twice the training rows' own size, and never less than this.
MIN_STORE_BYTES = 256 * 2**20


def store_budget(X_train: pd.DataFrame) -> int:
    """Bytes of prepared rows a search keeps: below 100k rows every fold of every preparation
    fits; at a million rows about one fold at a time (memory stays near GridSearchCV's)."""
    return max(MIN_STORE_BYTES, 2 * data_bytes(X_train))


def data_bytes(data: Any) -> int:
    if isinstance(data, pd.DataFrame):
        return int(data.memory_usage(index=True, deep=False).sum())
    return int(getattr(data, "nbytes", 0))


def record_of(key: str, fitted: Pipeline, fold: int, seconds: float) -> PreparationRecord:
    audit = audit_of(fitted)
    return PreparationRecord(
        key=key,
        steps=[name for name, _ in fitted.steps],
        fold=fold,
        rows=audit.n_rows_ if audit else -1,
        fingerprint=audit.fingerprint_ if audit else "",
        row_index=audit.row_index_ if audit else None,
        fit_seconds=seconds,
    )


@dataclass
class CandidateScore:
    """One candidate on one fold."""

    candidate: int
    fold: int
    score: float
    fit_seconds: float
    error: str | None = None
    response: np.ndarray | None = None  # its predictions for the fold's validation rows


def validation_response(fitted: Any, X: Any) -> np.ndarray | None:
    """What an ensemble blends: class probabilities (columns in sorted class order), or a
    regressor's predictions; float32 to keep a search's worth of them small."""
    if is_classifier(fitted):
        if not hasattr(fitted, "predict_proba"):
            return None
        return np.asarray(fitted.predict_proba(X), dtype=np.float32)
    return np.asarray(fitted.predict(X), dtype=np.float32).reshape(-1, 1)


@dataclass
class PreparedSearchResult:
    """Like GridSearchCV's cv_results_ (params, mean/std test score, mean fit time)."""

    params: list[dict[str, Any]]
    scores: np.ndarray  # candidates x folds, NaN where a fit failed
    fit_seconds: np.ndarray
    errors: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    preparations: list[tuple[str, int]] = field(default_factory=list)  # (key, fold) used
    # (candidate, fold) -> validation predictions, kept when an ensemble may blend them
    responses: dict[tuple[int, int], np.ndarray | None] = field(default_factory=dict)

    def cv_results(self) -> dict[str, Any]:
        with np.errstate(invalid="ignore"):
            return {
                "params": self.params,
                "mean_test_score": self.scores.mean(axis=1),
                "std_test_score": self.scores.std(axis=1),
                "mean_fit_time": self.fit_seconds.mean(axis=1),
            }

    def best_index(self) -> int | None:
        """The highest mean score, the first on ties (as GridSearchCV ranks); None if all failed."""
        means = self.cv_results()["mean_test_score"]
        if np.all(np.isnan(means)):
            return None
        return int(np.argmax(np.where(np.isnan(means), -np.inf, means)))

    def out_of_fold(
        self,
        candidate: int,
        splits: list[tuple[np.ndarray, np.ndarray]],
        *,
        n_rows: int,
        columns: int,
    ) -> np.ndarray | None:
        """The candidate's predictions for every training row from the fold that left the row
        out (NaN for rows no fold validates); None unless every fold kept `columns` of them (a
        fold that missed a class predicts fewer)."""
        parts = [self.responses.get((candidate, k)) for k in range(len(splits))]
        if any(part is None or part.shape[1] != columns for part in parts):
            return None
        oof = np.full((n_rows, columns), np.nan, dtype=np.float32)
        for (_, validation), part in zip(splits, parts, strict=True):
            oof[validation] = part
        return oof


def fit_and_score(
    rest: Pipeline,
    *,
    fold: PreparedFold,
    y: Any,
    scorer: Any,
    candidate: int,
    stop: ClusterStop | None = None,
    keep_response: bool = False,
) -> CandidateScore:
    """Fit the candidate's rest on the fold's prepared training rows; score its validation rows
    (and, with `keep_response`, keep its predictions for them). A stopped run's fit raises
    SearchStopped instead, and joblib submits no further fits."""
    begin_worker_job()
    use_fast_weighted_binning()  # this worker may not have been warmed up
    if stop is not None:
        stop.check()
    started = time.perf_counter()
    try:
        fitted = clone(rest).fit(take_rows(fold.data, fold.train), take_rows(y, fold.train))
        seconds = time.perf_counter() - started
        validation = take_rows(fold.data, fold.validation)
        score = scorer(fitted, validation, take_rows(y, fold.validation))
        response = validation_response(fitted, validation) if keep_response else None
    except Exception as error:  # recorded as NaN like GridSearchCV's error_score=np.nan
        return CandidateScore(
            candidate,
            fold.fold,
            np.nan,
            time.perf_counter() - started,
            f"{type(error).__name__}: {error}",
        )
    return CandidateScore(candidate, fold.fold, float(score), seconds, response=response)


def candidate_preparation(pipeline: Pipeline, params: dict[str, Any]) -> tuple[Pipeline, Pipeline]:
    """A candidate's pipeline cut into its shared preparation and the rest it fits itself."""
    candidate = clone(pipeline).set_params(**params)
    length = preparation_length(pipeline, params)
    return candidate[:length], candidate[length:]


def search_prepared(
    pipeline: Pipeline,
    candidates: list[dict[str, Any]],
    X: pd.DataFrame,
    y: pd.Series,
    *,
    scorer: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    n_jobs: int,
    store: FoldPreparations,
    budget: SearchBudget | None = None,
    stop: ClusterStop | None = None,
    keep_responses: bool = False,
) -> PreparedSearchResult:
    """Cross-validate candidates on folds prepared once. Without a budget every candidate and
    fold goes to one parallel batch (fold by fold when the prepared folds would not fit in the
    store together); with one, candidates run in batches of `n_jobs` (the first of one) and a
    batch starts only if it fits in what is left (see tasks/model_selection/budget.py). With
    `stop` (on a Dask worker), a stopped run raises SearchStopped before the next preparation or
    fit starts.
    With `keep_responses`, every fit's validation predictions are kept (for an ensemble)."""
    cut = [candidate_preparation(pipeline, params) for params in candidates]
    labels = fast_labels(y)  # one conversion for every fit and score below
    n_folds = len(splits)
    scores = np.full((len(candidates), n_folds), np.nan)
    seconds = np.zeros((len(candidates), n_folds))
    errors: list[str] = []
    batch_size = len(candidates) if budget is None else max(n_jobs, 1)
    last_batch: tuple[int, float] | None = None  # candidates, wall seconds
    slowest_fold_fit = 0.0
    tried = 0
    used: list[tuple[str, int]] = []
    responses: dict[tuple[int, int], np.ndarray | None] = {}
    while tried < len(candidates):
        refit_seconds = slowest_fold_fit * REFIT_MARGIN
        size = batch_size
        if budget is not None:
            size = budget.batch_size(
                most=batch_size, last_batch=last_batch, refit_seconds=refit_seconds
            )
            if size == 0:
                break
        batch = list(range(tried, min(tried + size, len(candidates))))
        if stop is not None:
            stop.check()
        started = time.perf_counter()
        try:
            keys = {i: preparation_key(cut[i][0]) for i in batch}
            distinct = {keys[i]: cut[i][0] for i in batch}
            # Every fold at once when the estimate says they fit (one parallel dispatch of every
            # preparation, then of every candidate and fold); else fold 0 first, whose size says
            # whether they fit or the folds go one by one.
            first: dict[str, PreparedFold] = {}
            if not store.surely_holds_all(len(distinct), n_folds):
                first = {
                    key: store.prepared_fold(prep, X, labels, splits, 0)
                    for key, prep in distinct.items()
                }
            if not first or store.holds_all(
                sum(data_bytes(f.data) for f in first.values()), n_folds
            ):
                fold_groups = [list(range(n_folds))]
            else:
                fold_groups = [[k] for k in range(n_folds)]
            for group in fold_groups:
                if stop is not None:
                    stop.check()
                if budget is not None and budget.cut:  # before a fresh pool starts for nothing
                    raise BudgetCut
                prepared = {
                    (key, fold.fold): fold
                    for key, prep in distinct.items()
                    for fold in (
                        [first[key]]  # at hand: the store may have let it go for another family's
                        if group == [0] and first
                        else store.prepared_folds(prep, X, labels, splits, group)
                    )
                }
                first = {}  # fold by fold, a fold's prepared rows live no longer than its fits
                outcomes = joblib.Parallel(n_jobs=n_jobs)(
                    joblib.delayed(fit_and_score)(
                        cut[i][1],
                        fold=prepared[(keys[i], k)],
                        y=labels,
                        scorer=scorer,
                        candidate=i,
                        stop=stop,
                        keep_response=keep_responses,
                    )
                    for i in batch
                    for k in group
                )
                for outcome in outcomes:
                    scores[outcome.candidate, outcome.fold] = outcome.score
                    seconds[outcome.candidate, outcome.fold] = outcome.fit_seconds
                    if keep_responses:
                        responses[(outcome.candidate, outcome.fold)] = outcome.response
                    if outcome.error:
                        errors.append(outcome.error)
                for i in batch:
                    for k in group:
                        store.count_reuse(keys[i], k, 1)
                        if (keys[i], k) not in used:
                            used.append((keys[i], k))
                del prepared, outcomes  # before the next fold is prepared (a million rows: 200 MB)
        except Exception:
            if budget is None or not budget.cut:
                raise
            break  # the budget's watch ended this batch's fits: its candidates count as not tried
        last_batch = (len(batch), time.perf_counter() - started)
        slowest_fold_fit = max(slowest_fold_fit, float(seconds[batch].max()))
        if budget is not None and not np.all(np.isnan(scores[batch])):
            budget.mark_scored(float(np.nanmax(seconds[batch])) * REFIT_MARGIN)
        tried = batch[-1] + 1
    skipped = [candidates[i] for i in range(tried, len(candidates))]
    return PreparedSearchResult(
        params=candidates[:tried],
        scores=scores[:tried],
        fit_seconds=seconds[:tried],
        errors=errors,
        skipped=skipped,
        preparations=used,
        responses=responses,
    )
