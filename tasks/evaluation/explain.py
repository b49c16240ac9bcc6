"""Calibration of the best model's probabilities and permutation importance of raw columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import check_scoring
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from tasks.data.split import fast_labels

# Permutation importance re-predicts the data n_repeats times per column: cap the rows it uses.
MAX_IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 3
# Permuted copies stacked into one prediction, up to about this many rows.
ROWS_PER_PREDICTION = 20_000


def brier_score(y_true: pd.Series, probabilities: pd.DataFrame, classes: list[str]) -> float:
    """Mean over rows of the squared distance between the probability vector and the one-hot truth
    (for two classes this is twice sklearn's binary Brier score, so we report the binary one)."""
    truth = np.equal.outer(y_true.to_numpy(), np.asarray(classes)).astype(float)
    squared = ((probabilities[classes].to_numpy() - truth) ** 2).sum(axis=1)
    score = float(squared.mean())
    return score / 2 if len(classes) == 2 else score


def importance_table(
    model: Any, X: pd.DataFrame, y: pd.Series, scoring: Any, seed: int, n_jobs: int = 1
) -> pd.DataFrame:
    """Drop in the selection score when each raw input column is shuffled (mean ± std over
    repeats): scikit-learn's permutation_importance, same shuffles and same numbers, but the
    permuted copies of the rows are stacked so the pipeline predicts a few large batches instead
    of once per column and repeat (on caravan, 85 columns, its per-call cost was most of the
    time). The batches are spread over n_jobs worker processes (the search's pool)."""
    parts = Parallel(n_jobs=n_jobs)(
        delayed(importance_part)(model, X, y, scoring, seed, part=part, parts=n_jobs)
        for part in range(n_jobs)
    )
    return importance_from_parts(parts)


@dataclass(frozen=True)
class ImportancePart:
    """The permuted scores of some columns (their positions, one row of repeats each), and the
    unshuffled score they drop from."""

    columns: list[str]
    positions: list[int]
    scores: np.ndarray
    baseline: float


def importance_part(
    model: Any, X: pd.DataFrame, y: pd.Series, scoring: Any, seed: int, *, part: int, parts: int
) -> ImportancePart:
    """Part `part` of `parts` of importance_table's work (every parts-th batch of columns), for
    one worker process; the parts together are the whole table."""
    if len(X) > MAX_IMPORTANCE_ROWS:
        X = X.sample(MAX_IMPORTANCE_ROWS, random_state=seed)
        y = y.loc[X.index]
    labels = fast_labels(y)  # the scorer's np.unique per copy: 0.75 s of 3 s at 100k rows
    scorer = check_scoring(model, scoring=scoring)
    orders = shuffle_orders(len(X), n_repeats=IMPORTANCE_REPEATS, seed=seed)
    batches = column_batches(X.shape[1], rows_per_copy=len(X) * len(orders), n_jobs=parts)
    mine = batches[part::parts]
    # Small predictions run faster single-threaded than with OpenMP threads fighting for 2 cores.
    with threadpool_limits(limits=1):
        baseline = scorer(model, X, labels)
        scores = [
            permuted_scores(model, X, labels, scorer=scorer, columns=batch, orders=orders)
            for batch in mine
        ]
    positions = [position for batch in mine for position in batch]
    return ImportancePart(
        columns=list(X.columns),
        positions=positions,
        scores=np.vstack(scores) if scores else np.zeros((0, len(orders))),
        baseline=float(baseline),
    )


def importance_from_parts(parts: list[ImportancePart]) -> pd.DataFrame:
    """importance_table's table from all of its parts."""
    columns = parts[0].columns
    scores = np.zeros((len(columns), IMPORTANCE_REPEATS))
    for part in parts:
        scores[part.positions] = part.scores
    importances = parts[0].baseline - scores
    table = pd.DataFrame(
        {
            "column": columns,
            "importance_mean": importances.mean(axis=1),
            "importance_std": importances.std(axis=1),
        }
    )
    return table.sort_values("importance_mean", ascending=False, kind="stable").reset_index(
        drop=True
    )


def shuffle_orders(n_rows: int, *, n_repeats: int, seed: int) -> list[np.ndarray]:
    """The row order of a shuffled column in each repeat, as permutation_importance draws them:
    one seed for every column, and each repeat shuffles the previous repeat's column again."""
    column_seed = check_random_state(seed).randint(np.iinfo(np.int32).max + 1)
    random_state = check_random_state(column_seed)
    shuffling = np.arange(n_rows)
    order = np.arange(n_rows)
    orders = []
    for _ in range(n_repeats):
        random_state.shuffle(shuffling)
        order = order[shuffling]
        orders.append(order)
    return orders


def column_batches(n_columns: int, *, rows_per_copy: int, n_jobs: int) -> list[list[int]]:
    """Column positions in batches of about ROWS_PER_PREDICTION stacked rows, at least one batch
    per worker process."""
    per_batch = max(1, min(ROWS_PER_PREDICTION // max(rows_per_copy, 1), -(-n_columns // n_jobs)))
    return [list(range(i, min(i + per_batch, n_columns))) for i in range(0, n_columns, per_batch)]


def permuted_scores(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    scorer: Any,
    columns: list[int],
    orders: list[np.ndarray],
) -> np.ndarray:
    """Scores with each of `columns` shuffled in each of `orders`: one row per column, one
    score per order. One prediction for all the copies; the scorer reads its copy's rows."""
    n_rows = len(X)
    copies = [(column, order) for column in columns for order in orders]
    stacked = X.iloc[np.tile(np.arange(n_rows), len(copies))].reset_index(drop=True)
    for position in columns:
        rows = np.tile(np.arange(n_rows), len(copies))
        for index, (column, order) in enumerate(copies):
            if column == position:
                rows[index * n_rows : (index + 1) * n_rows] = order
        stacked.isetitem(position, X.iloc[:, position].array.take(rows))
    answers = StackedAnswers(model, stacked)
    scores = [
        scorer(answers, np.arange(index * n_rows, (index + 1) * n_rows), y)
        for index in range(len(copies))
    ]
    return np.asarray(scores, dtype=float).reshape(len(columns), len(orders))


def has_method(name: str) -> Any:
    return lambda answers: hasattr(answers.model, name)


class StackedAnswers(BaseEstimator):
    """A fitted model's answers for a stack of rows, each method called once on the whole stack;
    a scorer asks it for one copy at a time, passing that copy's positions in the stack as X."""

    def __init__(self, model: Any, stacked: pd.DataFrame) -> None:
        self.model = model
        self.stacked = stacked
        self.answers: dict[str, np.ndarray] = {}

    def __sklearn_tags__(self) -> Any:  # a classifier's scorer reads classes and probabilities
        return get_tags(self.model)

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def answer(self, method: str, rows: np.ndarray) -> np.ndarray:
        if method not in self.answers:
            self.answers[method] = np.asarray(getattr(self.model, method)(self.stacked))
        return self.answers[method][rows]

    @available_if(has_method("predict"))
    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.answer("predict", rows)

    @available_if(has_method("predict_proba"))
    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return self.answer("predict_proba", rows)

    @available_if(has_method("decision_function"))
    def decision_function(self, rows: np.ndarray) -> np.ndarray:
        return self.answer("decision_function", rows)


@dataclass(frozen=True)
class Explanations:
    """What metrics.json says of calibration and importance, and the table the plot shows."""

    summary: dict[str, Any]
    importance: pd.DataFrame


def explain(
    model: Any,
    *,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
    scoring: Any,
    seed: int,
    n_jobs: int = 1,
) -> Explanations:
    """Brier score (classification) and the permutation importance of the raw columns."""
    table = importance_table(model, X_test, y_test, scoring, seed, n_jobs)
    return explanations_of(
        table,
        y_test=y_test,
        probabilities=probabilities,
        classes=classes,
        positive_label=positive_label,
    )


def explanations_of(
    table: pd.DataFrame,
    *,
    y_test: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> Explanations:
    """Explanations from the importance table and the test answers (the Brier score)."""
    importance = table.to_dict(orient="records")
    if not classes:  # regression: no probabilities to calibrate
        return Explanations({"permutation_importance": importance}, table)
    summary = {
        "brier_score": brier_score(y_test.astype(str), probabilities, classes),
        "brier_note": "binary: mean squared error of the positive-class probability"
        if positive_label is not None
        else "multiclass: mean over rows of the summed squared error over classes",
        "permutation_importance": importance,
    }
    return Explanations(summary, table)
