"""Model selection: a cross-validated search per model family, then the best across families."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (enables the import below)
from sklearn.metrics import average_precision_score, check_scoring, make_scorer
from sklearn.model_selection import (
    BaseCrossValidator,
    GridSearchCV,
    HalvingGridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
)

from tasks.data.profile import DataProfile
from tasks.data.split import fast_labels
from tasks.errors import AllFamiliesFailed, ConfigError
from tasks.model_selection.budget import SearchBudget, cheapest_first
from tasks.model_selection.parallel import ClusterStop
from tasks.model_selection.pipeline import rebalancing_name
from tasks.model_selection.prepared import (
    FoldPreparations,
    PreparationRecord,
    search_prepared,
    store_budget,
)

# Successive halving pays once the rows are many and so are the candidates (benchmarks/README.md):
# below these, strategy 'auto' searches the whole grid.
HALVING_MIN_ROWS = 50_000
HALVING_MIN_CANDIDATES = 9


@dataclass(frozen=True)
class SelectionChoice:
    metric: str
    reason: str


@dataclass
class FamilyResult:
    """One family's search: every candidate's CV scores and its best pipeline, refitted on all
    training rows unless `fitted` is False (the flow refits only the winner: refit_best)."""

    family: str
    status: str
    best_params: dict[str, Any] = field(default_factory=dict)
    best_score: float | None = None
    best_std: float | None = None
    fit_seconds: float = 0.0
    candidates: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    estimator: Pipeline | None = None
    worker: str | None = None  # the Dask worker that ran the search; None when run locally
    notes: list[str] = field(default_factory=list)  # e.g. candidates the time budget skipped
    # What each shared fold preparation's fit saw (the leakage audit checks it); empty for halving.
    preparations: list[PreparationRecord] = field(default_factory=list)
    fitted: bool = True
    # The best candidate's predictions for each training row from the fold that left it out
    # (rows x classes, or x 1 for regression): what an ensemble blends; None when not kept.
    out_of_fold: np.ndarray | None = field(default=None, repr=False)


def choose_selection_metric(profile: DataProfile, override: str | None) -> SelectionChoice:
    """The course's rule: ROC-AUC for roughly balanced classes, PR-AUC for imbalance."""
    if profile.task == "regression":
        return choose_regression_metric(override)
    share = f"{profile.minority_share:.1%}"
    if override:
        return SelectionChoice(override, f"set in the config (minority class share {share}).")
    if profile.task == "multiclass":
        return SelectionChoice(
            "f1_macro", "multiclass target: macro F1 weighs every class equally."
        )
    if profile.roughly_balanced:
        return SelectionChoice(
            "roc_auc", f"classes are roughly balanced (minority share {share}): ROC-AUC."
        )
    return SelectionChoice(
        "average_precision",
        f"minority class '{profile.positive_label}' is {share} of rows, a moderate to large "
        "imbalance: precision-recall AUC (average precision).",
    )


REGRESSION_METRICS = (
    "neg_root_mean_squared_error",
    "neg_mean_squared_error",
    "neg_mean_absolute_error",
    "r2",
)


def choose_regression_metric(override: str | None) -> SelectionChoice:
    """RMSE by default: the course's MSE, in the target's own units (negated: higher is better)."""
    if override and override not in REGRESSION_METRICS:
        raise ConfigError(
            f"selection_metric '{override}' is a classification metric; a regression target "
            f"takes one of {', '.join(REGRESSION_METRICS)}."
        )
    if override:
        return SelectionChoice(override, "set in the config.")
    return SelectionChoice(
        "neg_root_mean_squared_error",
        "regression target: RMSE is the square root of the course's MSE, so it punishes large "
        "errors the same way, but reads in the target's units; scikit-learn maximises scores, "
        "so it is negated.",
    )


def build_scorer(metric: str, positive_label: str | None) -> Any:
    """A scorer that knows the positive label (string labels need it for PR-AUC and F1)."""
    if metric == "average_precision" and positive_label is not None:
        return make_scorer(
            average_precision_score,
            response_method=("decision_function", "predict_proba"),
            pos_label=positive_label,
        )
    if metric == "f1" and positive_label is not None:
        from sklearn.metrics import f1_score

        return make_scorer(f1_score, pos_label=positive_label)
    return metric


def readable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Grid parameters as people write them: no pipeline prefix, samplers by name."""
    estimator_params = {
        key.removeprefix("model__").removeprefix("estimator__"): value
        for key, value in params.items()
        if key.startswith("model__")
    }
    readable: dict[str, Any] = {}
    if "rebalance" in params:  # regression grids have no sampler
        readable["rebalance"] = rebalancing_name(
            params["rebalance"], estimator_params.get("class_weight")
        )
    for key, value in estimator_params.items():
        if key != "class_weight":
            readable[key] = value if np.isscalar(value) else str(value)
    return readable


def finite_or_none(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def candidate_rows(family: str, cv_results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter set: the CV score mean and std and the mean fit time."""
    rows = []
    for i, params in enumerate(cv_results["params"]):
        rows.append(
            {
                "family": family,
                "params": readable_params(params),
                "mean_score": finite_or_none(cv_results["mean_test_score"][i]),
                "std_score": finite_or_none(cv_results["std_test_score"][i]),
                "mean_fit_seconds": float(cv_results["mean_fit_time"][i]),
            }
        )
    return rows


def build_search(
    pipeline: Pipeline,
    grid: list[dict[str, list[Any]]],
    scoring: Any,
    folds: BaseCrossValidator,
    strategy: str,
    n_iter: int,
    n_jobs: int,
    seed: int,
) -> Any:
    """Exhaustive grid, successive halving, or a random budget; the best is refit on all rows."""
    common: dict[str, Any] = {
        "scoring": scoring,
        "cv": folds,
        "n_jobs": n_jobs,
        "refit": True,
        "error_score": np.nan,
    }
    if strategy == "halving":
        return HalvingGridSearchCV(pipeline, grid, random_state=seed, factor=3, **common)
    if strategy == "random":
        return RandomizedSearchCV(pipeline, grid, n_iter=n_iter, random_state=seed, **common)
    return GridSearchCV(pipeline, grid, **common)


def short_error(error: BaseException) -> str:
    """One line: for sklearn's 'All the fits failed' (which embeds tracebacks), the last line,
    which is the estimator's own error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if "fits failed" not in str(error):
        return f"{type(error).__name__}: {lines[0]}"
    name, separator, message = lines[-1].partition(": ")
    if separator and " " not in name:
        return f"{name.rsplit('.', 1)[-1]}: {message}"
    return lines[-1]


def search_family(
    family: str,
    pipeline: Pipeline,
    grid: list[dict[str, list[Any]]],
    X_train: pd.DataFrame,
    y_train: pd.Series,
    scoring: Any,
    folds: BaseCrossValidator,
    strategy: str = "grid",
    n_iter: int = 20,
    n_jobs: int = 1,
    seed: int = 0,
    *,
    preparations: FoldPreparations | None = None,
    budget: SearchBudget | None = None,
    reuse_preparation: bool = True,
    stop: ClusterStop | None = None,
    refit: bool = True,
    keep_out_of_fold: bool = False,
) -> FamilyResult:
    """Cross-validate a family's grid on training rows only; a family that fails is recorded.

    Grid and random searches prepare each fold once (tasks/model_selection/prepared.py), shared
    through `preparations` with the other families; successive halving fits each candidate's
    whole pipeline (its rounds fit on different subsets of rows). On a Dask worker, `stop`
    ends a stopped run's grid or random search with SearchStopped (a halving search runs on).
    With `refit=False` a grid or random search returns its best pipeline unfitted; with
    `keep_out_of_fold` it keeps the best candidate's out-of-fold predictions (an ensemble's)."""
    strategy = resolve_strategy(strategy, len(y_train), len(ParameterGrid(grid)), budget)
    if strategy == "halving" or not reuse_preparation:
        return search_whole_pipelines(
            family, pipeline, grid, X_train, y_train, scoring, folds, strategy, n_iter, n_jobs, seed
        )
    candidates = search_candidates(grid, strategy, n_iter, seed)
    return search_prepared_folds(
        family,
        pipeline,
        candidates if budget is None else cheapest_first(candidates),
        X_train,
        y_train,
        scoring=scoring,
        folds=folds,
        n_jobs=n_jobs,
        store=preparations or FoldPreparations(n_jobs, store_budget(X_train)),
        budget=budget,
        stop=stop,
        refit=refit,
        keep_out_of_fold=keep_out_of_fold,
    )


def resolve_strategy(
    strategy: str, n_rows: int, n_candidates: int, budget: SearchBudget | None
) -> str:
    """'auto': successive halving for many rows and many candidates, else the whole grid (a
    budgeted search needs the grid: it stops between batches of candidates)."""
    if strategy != "auto":
        return strategy
    if budget is None and n_rows >= HALVING_MIN_ROWS and n_candidates >= HALVING_MIN_CANDIDATES:
        return "halving"
    return "grid"


def search_candidates(
    grid: list[dict[str, list[Any]]], strategy: str, n_iter: int, seed: int
) -> list[dict[str, Any]]:
    """The candidates GridSearchCV or RandomizedSearchCV would try, in their order."""
    if strategy == "random":
        return list(ParameterSampler(grid, n_iter, random_state=seed))
    return list(ParameterGrid(grid))


def search_prepared_folds(
    family: str,
    pipeline: Pipeline,
    candidates: list[dict[str, Any]],
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    scoring: Any,
    folds: BaseCrossValidator,
    n_jobs: int,
    store: FoldPreparations,
    budget: SearchBudget | None,
    stop: ClusterStop | None = None,
    refit: bool = True,
    keep_out_of_fold: bool = False,
) -> FamilyResult:
    """Candidates scored on folds prepared once, then the best refit on all training rows
    (or, with `refit=False`, left for refit_best)."""
    started = time.perf_counter()
    splits = list(folds.split(X_train, y_train))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        outcome = search_prepared(
            pipeline,
            candidates,
            X_train,
            y_train,
            scorer=check_scoring(pipeline, scoring=scoring),
            splits=splits,
            n_jobs=n_jobs,
            store=store,
            budget=budget,
            stop=stop,
            keep_responses=keep_out_of_fold,
        )
    notes = budget_notes(outcome.skipped, len(candidates), budget)
    records = [store.records[key] for key in outcome.preparations]
    candidates_rows = candidate_rows(family, outcome.cv_results())
    best = outcome.best_index()
    if best is None:
        status = "skipped" if not outcome.params else "failed"
        # Every fit raised: the estimator's own one-line error (as GridSearchCV's path reports).
        error = "every candidate failed to fit or score"
        if outcome.params and len(outcome.errors) == outcome.scores.size:
            error = outcome.errors[0].splitlines()[0]
        return FamilyResult(
            family,
            status,
            candidates=candidates_rows,
            error=error if status == "failed" else None,
            fit_seconds=time.perf_counter() - started,
            notes=notes,
            preparations=records,
        )
    model = clone(pipeline).set_params(**outcome.params[best])
    if refit:
        try:
            model = fit_quietly(model, X_train, y_train)
        except Exception as error:  # the refit on all rows failed: the family cannot be used
            return FamilyResult(
                family,
                "failed",
                candidates=candidates_rows,
                error=short_error(error),
                fit_seconds=time.perf_counter() - started,
                notes=notes,
                preparations=records,
            )
    columns = y_train.nunique() if is_classifier(pipeline) else 1
    return FamilyResult(
        family=family,
        status="completed",
        best_params=readable_params(outcome.params[best]),
        best_score=candidates_rows[best]["mean_score"],
        best_std=candidates_rows[best]["std_score"],
        fit_seconds=time.perf_counter() - started,
        candidates=candidates_rows,
        estimator=model,
        notes=notes,
        preparations=records,
        fitted=refit,
        out_of_fold=outcome.out_of_fold(best, splits, n_rows=len(y_train), columns=columns),
    )


def fit_quietly(model: Pipeline, X: pd.DataFrame, y: pd.Series | np.ndarray) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(X, y)


def budget_notes(
    skipped: list[dict[str, Any]], total: int, budget: SearchBudget | None
) -> list[str]:
    if not skipped or budget is None:
        return []
    return [
        f"time budget ({budget.describe()}): {len(skipped)} of {total} candidates not tried, "
        "they would not have finished in time"
    ]


def search_whole_pipelines(
    family: str,
    pipeline: Pipeline,
    grid: list[dict[str, list[Any]]],
    X_train: pd.DataFrame,
    y_train: pd.Series,
    scoring: Any,
    folds: BaseCrossValidator,
    strategy: str = "grid",
    n_iter: int = 20,
    n_jobs: int = 1,
    seed: int = 0,
) -> FamilyResult:
    """GridSearchCV, HalvingGridSearchCV or RandomizedSearchCV over the whole pipeline."""
    started = time.perf_counter()
    search = build_search(clone(pipeline), grid, scoring, folds, strategy, n_iter, n_jobs, seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitFailedWarning)
            warnings.simplefilter("ignore", UserWarning)
            search.fit(X_train, y_train)
    except Exception as error:  # a family that cannot be fitted must not sink the others
        return FamilyResult(
            family,
            "failed",
            error=short_error(error),
            fit_seconds=time.perf_counter() - started,
        )
    candidates = candidate_rows(family, search.cv_results_)
    if all(row["mean_score"] is None for row in candidates):
        return FamilyResult(
            family,
            "failed",
            candidates=candidates,
            error="every candidate failed to fit or score",
            fit_seconds=time.perf_counter() - started,
        )
    best = search.best_index_
    return FamilyResult(
        family=family,
        status="completed",
        best_params=readable_params(search.best_params_),
        best_score=candidates[best]["mean_score"],
        best_std=candidates[best]["std_score"],
        fit_seconds=time.perf_counter() - started,
        candidates=candidates,
        estimator=search.best_estimator_,
    )


def refit_best(
    results: list[FamilyResult], X_train: pd.DataFrame, y_train: pd.Series
) -> FamilyResult:
    """The best family, its pipeline refitted on all training rows. Only the winner needs the
    refit (GridSearchCV refits every family's best); a winner whose refit fails is marked
    failed, as it would have been in its search, and the next best is refitted instead."""
    labels = fast_labels(y_train)  # the fits' np.unique calls: 5 s on a million string labels
    while True:
        best = select_best(results)
        if best.fitted:
            return best
        assert best.estimator is not None
        started = time.perf_counter()
        try:
            best.estimator = fit_quietly(best.estimator, X_train, labels)
        except Exception as error:  # as in search_prepared_folds: this family cannot be used
            best.status, best.error = "failed", short_error(error)
            continue
        finally:
            best.fit_seconds += time.perf_counter() - started
        best.fitted = True
        return best


def select_best(results: list[FamilyResult]) -> FamilyResult:
    """The completed family with the highest CV score (ties: the first listed)."""
    completed = [r for r in results if r.status == "completed" and r.best_score is not None]
    if not completed:
        reasons = "; ".join(f"{r.family}: {r.error}" for r in results)
        raise AllFamiliesFailed(f"Every model family failed ({reasons}).")
    return max(completed, key=lambda r: r.best_score or -math.inf)
