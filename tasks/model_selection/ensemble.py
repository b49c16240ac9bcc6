"""An ensemble candidate: a weighted blend of each family's best pipeline (`search.ensemble`).

Ensemble selection (Caruana et al., 2004; AutoGluon's weighted ensemble): from the out-of-fold
predictions the families' searches already made, add one family's best at a time, with
replacement, whichever most improves the selection metric of the averaged predictions; the
times each is picked are its weights. It needs no fit to be scored, so it costs little.

Its CV score is honest: on each fold, weights chosen on the other folds' rows score that fold's
rows, and the mean over folds is compared with the families' mean fold scores. It joins the
results as the family `ensemble`, listed last, and select_best prefers the first of equal scores,
so it wins only with a strictly better CV score. The model is scikit-learn's VotingClassifier
(soft, weighted) or VotingRegressor (weighted) over the picked pipelines, refitted on all training
rows only if it wins. Each member is a whole tabpipe pipeline with its audit steps, so the
leakage audit checks every member (tasks/model_selection/audit.py); the weights see only the
training rows' out-of-fold predictions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.metrics import get_scorer
from sklearn.model_selection import BaseCrossValidator

from tasks.data.split import fast_labels
from tasks.model_selection.search import FamilyResult, finite_or_none

ENSEMBLE = "ensemble"
# Most members added (with replacement): AutoGluon's default ensemble size.
SELECTION_ROUNDS = 25
# search.ensemble 'auto' blends below this many training rows, where keeping every fit's
# validation predictions costs little; above it the search is as before unless set to true.
AUTO_MAX_ROWS = 50_000


def ensemble_wanted(setting: bool | str, n_train: int) -> bool:
    """search.ensemble: true, false, or 'auto' (below AUTO_MAX_ROWS training rows)."""
    return n_train < AUTO_MAX_ROWS if setting == "auto" else bool(setting)


class FixedProbabilities(ClassifierMixin, BaseEstimator):
    """Given class probabilities answered by row position: lets a scikit-learn scorer score a
    blend exactly as it scores a fitted classifier (predict is the most probable class)."""

    def __init__(self, probabilities: np.ndarray, classes: np.ndarray) -> None:
        self.probabilities = probabilities
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return self.probabilities[rows]

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.probabilities[rows], axis=1)]


class FixedPredictions(RegressorMixin, BaseEstimator):
    """Given regression predictions answered by row position (see FixedProbabilities)."""

    def __init__(self, predictions: np.ndarray) -> None:
        self.predictions = predictions

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.predictions[rows, 0]


def blend_scorer(
    scoring: Any, y: np.ndarray, *, classes: np.ndarray | None
) -> Callable[[np.ndarray, np.ndarray], float]:
    """score(blend, rows): the selection metric of blended predictions for these training rows
    (-inf where it is undefined)."""
    scorer = get_scorer(scoring)

    def score(blend: np.ndarray, rows: np.ndarray) -> float:
        fixed: BaseEstimator = (
            FixedPredictions(blend) if classes is None else FixedProbabilities(blend, classes)
        )
        value = float(scorer(fixed, np.arange(len(rows)), y[rows]))
        return value if np.isfinite(value) else -np.inf

    return score


def select_weights(
    members: np.ndarray,
    rows: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
    rounds: int = SELECTION_ROUNDS,
) -> np.ndarray:
    """How many times each member is picked: each round adds the one whose addition scores best
    on `rows` (the first on ties); stops when no addition improves the score."""
    picks = np.zeros(len(members), dtype=int)
    total = np.zeros(members.shape[1:], dtype=np.float64)[rows]
    current = -np.inf
    for picked in range(rounds):
        trials = [score((total + member[rows]) / (picked + 1), rows) for member in members]
        best = int(np.argmax(trials))
        if trials[best] <= current:
            break
        current = trials[best]
        picks[best] += 1
        total += members[best][rows]
    return picks


def blend(members: np.ndarray, picks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The members' predictions for these rows, averaged with the picks as weights."""
    return np.tensordot(picks / picks.sum(), members[:, rows], axes=1)


def fold_scores(
    members: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    score: Callable[[np.ndarray, np.ndarray], float],
) -> list[float]:
    """Honest CV: each fold's rows scored with weights chosen on the other folds' rows."""
    scores = []
    for _, validation in splits:
        others = np.setdiff1d(np.arange(members.shape[1]), validation)
        picks = select_weights(members, others, score)
        undefined = picks.sum() == 0  # no member scores on the other folds' rows
        scores.append(np.nan if undefined else score(blend(members, picks, validation), validation))
    return scores


def covers_every_row_once(splits: list[tuple[np.ndarray, np.ndarray]], n_rows: int) -> bool:
    validated = np.concatenate([validation for _, validation in splits])
    return len(validated) == n_rows and len(np.unique(validated)) == n_rows


def blendable(results: list[FamilyResult]) -> list[FamilyResult]:
    """Completed families whose searches kept their best's out-of-fold predictions."""
    return [
        r
        for r in results
        if r.status == "completed" and r.estimator is not None and r.out_of_fold is not None
    ]


def build_ensemble(
    members: list[tuple[str, Any]], weights: list[float], task: str, n_jobs: int = 1
) -> VotingClassifier | VotingRegressor:
    """Weighted soft voting over unfitted clones of the members' pipelines; `n_jobs` fits the
    members side by side (in the CV's worker pool)."""
    named = [(name, clone(estimator)) for name, estimator in members]
    if task == "regression":
        return VotingRegressor(named, weights=weights, n_jobs=n_jobs)
    return VotingClassifier(named, voting="soft", weights=weights, n_jobs=n_jobs)


def search_ensemble(
    results: list[FamilyResult],
    y_train: pd.Series,
    *,
    task: str,
    scoring: Any,
    folds: BaseCrossValidator,
    X_train: pd.DataFrame,
    n_jobs: int = 1,
) -> FamilyResult | None:
    """The blend of the families' best pipelines with its honest CV score, left unfitted (the
    flow refits it only if it wins); None when fewer than two families can be blended or the
    blend picks one family."""
    started = time.perf_counter()
    candidates = blendable(results)
    splits = list(folds.split(X_train, y_train))
    if len(candidates) < 2 or not covers_every_row_once(splits, len(y_train)):
        return None
    labels = fast_labels(y_train)
    classes = None if task == "regression" else np.unique(labels)
    score = blend_scorer(scoring, labels, classes=classes)
    members = np.stack([np.asarray(r.out_of_fold, dtype=np.float64) for r in candidates])
    picks = select_weights(members, np.arange(len(labels)), score)
    if np.count_nonzero(picks) < 2:
        return None
    scores = fold_scores(members, splits, score)
    chosen = [(r, int(p)) for r, p in zip(candidates, picks, strict=True) if p > 0]
    weights = [p / picks.sum() for _, p in chosen]
    params = {
        "weights": ", ".join(
            f"{r.family} {w:.2f}" for (r, _), w in zip(chosen, weights, strict=True)
        )
    }
    mean, std = finite_or_none(np.mean(scores)), finite_or_none(np.std(scores))
    seconds = time.perf_counter() - started
    return FamilyResult(
        family=ENSEMBLE,
        status="completed" if mean is not None else "failed",
        best_params=params,
        best_score=mean,
        best_std=std,
        fit_seconds=seconds,
        candidates=[
            {
                "family": ENSEMBLE,
                "params": params,
                "mean_score": mean,
                "std_score": std,
                "mean_fit_seconds": seconds,
            }
        ],
        error=None if mean is not None else "every fold failed to score",
        estimator=build_ensemble(
            [(r.family, r.estimator) for r, _ in chosen], weights, task, n_jobs=n_jobs
        ),
        fitted=False,
    )


def ensemble_members(model: Any) -> list[tuple[str, Any]]:
    """The fitted member pipelines of an ensemble model; empty for a single pipeline."""
    if isinstance(model, VotingClassifier | VotingRegressor) and hasattr(model, "estimators_"):
        names = [name for name, _ in model.estimators]
        return list(zip(names, model.estimators_, strict=True))
    return []
