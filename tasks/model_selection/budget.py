"""A time budget for the search (`search.time_budget: MINUTES`), shared by concurrent families.

Like FLAML's budgeted search, but over the fixed grids: families start in order of expected value
per second, each family runs its candidates in batches (the first of one candidate), and a batch
starts only when the last batch's wall time (this family's own measure of the machine right now)
plus the refit of the best candidate still fits before the deadline. What does not fit is
skipped, with a note.

A batch's first fits cannot be estimated before they run (a random forest's first batch on 80,000
rows took four times a one-minute budget), so a watch ends the fits still in flight when the
deadline, less the time kept for the winner's refit, has come and some candidate has a score: it
stops the CV worker processes, and the families keep what they finished (`SearchBudget.watch`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# Expected value per second, best first: gradient boosting is strong and fast on tables, a linear
# model is nearly free, forests are strong but slower; distances and kernels scale worst
# (benchmarks/README.md, and TabArena's ranking of tuned families).
FAMILY_PRIORITY = (
    "hist_gradient_boosting",
    "logistic_regression",
    "ridge",
    "linear_regression",
    "random_forest",
    "decision_tree",
    "mlp",
    "knn",
    "svm",
)

# Margin left for the refit of a family's best candidate, as a multiple of one fold fit (the refit
# sees all training rows, a fold fit (k-1)/k of them).
REFIT_MARGIN = 1.6


def by_expected_value_per_second(families: list[str]) -> list[str]:
    """Families in the order a budgeted search starts them (unknown names last, as given)."""
    rank = {name: position for position, name in enumerate(FAMILY_PRIORITY)}
    return sorted(families, key=lambda name: rank.get(name, len(rank)))


# Grid parameters that bound a fit's size: dearer as they grow (None: unbounded), or as they shrink.
DEARER_AS_THEY_GROW = ("n_estimators", "max_iter", "max_depth", "max_leaf_nodes")
DEARER_AS_THEY_SHRINK = ("min_samples_leaf",)
UNBOUNDED = 1e6


def cheapest_first(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates in the order a budgeted search tries them: the smallest fits first (fewer
    trees, iterations, levels or leaves, larger leaves), grid order among equals. The first
    score comes soonest, and what the budget leaves out is the dearest."""
    return sorted(candidates, key=fit_size)


def fit_size(params: dict[str, Any]) -> float:
    """A rough, comparable size of a candidate's fit from its size-bounding parameters."""
    size = 1.0
    for name, value in params.items():
        short = name.rsplit("__", 1)[-1]
        if short in DEARER_AS_THEY_GROW and (value is None or is_number(value)):
            size *= UNBOUNDED if value is None else max(float(value), 1.0)
        elif short in DEARER_AS_THEY_SHRINK and is_number(value):
            size /= max(float(value), 1.0)
    return size


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class BudgetCut(Exception):
    """The watch ended the search's fits: the batch under way is not tried."""


class SearchBudget:
    """The deadline of one search; thread-safe (families in the task runner's threads)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        # Wall clock, not monotonic: a Dask worker on another machine reads the same deadline.
        self.started = time.time()
        self._lock = threading.Lock()
        self._scored = False
        self._refit_reserve = 0.0
        self._cut = threading.Event()

    def __getstate__(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "started": self.started, "scored": self._scored}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["seconds"] / 60.0)  # type: ignore[misc]
        self.started = state["started"]
        self._scored = state["scored"]

    @property
    def deadline(self) -> float:
        """When the budget ends, in epoch seconds."""
        return self.started + self.seconds

    def remaining(self) -> float:
        return self.seconds - (time.time() - self.started)

    def mark_scored(self, refit_seconds: float = 0.0) -> None:
        """Some family has a cross-validated candidate: the run can finish with a model. The
        time kept for the winner's refit grows to this candidate's estimate (any family's best
        may win), up to half the budget."""
        with self._lock:
            self._scored = True
            self._refit_reserve = max(self._refit_reserve, min(refit_seconds, self.seconds / 2))

    @property
    def refit_reserve(self) -> float:
        """Seconds kept before the deadline for the winner's refit."""
        with self._lock:
            return self._refit_reserve

    @property
    def cut(self) -> bool:
        """Has the watch ended the fits in flight?"""
        return self._cut.is_set()

    def watch(self, end_fits: Callable[[], None], poll_seconds: float = 0.1) -> Callable[[], None]:
        """Call `end_fits` once, in a thread, when the deadline less the refit reserve has come
        and some candidate has a score (a run needs a model: until then the fits run on).
        Returns the function that ends the watch (call it when the search is done)."""
        done = threading.Event()

        def watch_deadline() -> None:
            while not done.wait(poll_seconds):
                if self.anything_scored and self.remaining() <= self.refit_reserve:
                    self._cut.set()
                    end_fits()
                    return

        threading.Thread(target=watch_deadline, name="time-budget", daemon=True).start()
        return done.set

    @property
    def anything_scored(self) -> bool:
        with self._lock:
            return self._scored

    def allows(self, batch_seconds: float | None, refit_seconds: float) -> bool:
        """May a batch start? With no estimate yet (a family's first batch) it may while time is
        left, or always when nothing has been scored yet (a run must end with a model)."""
        if self.cut:
            return False
        if batch_seconds is None:
            return self.remaining() > 0 or not self.anything_scored
        return batch_seconds + refit_seconds <= self.remaining()

    def batch_size(
        self, *, most: int, last_batch: tuple[int, float] | None, refit_seconds: float
    ) -> int:
        """How many candidates a family's next batch may hold; 0 when none may start. The first
        is one (nothing can be ended before some candidate has a score, and one scores soonest);
        after it, the most, up to `most`, whose cost at the last batch's seconds per candidate
        still fits with the refit (an estimate for a batch of two from a batch of one is not
        the batch of one's)."""
        if last_batch is None:
            return 1 if self.allows(None, refit_seconds) else 0
        candidates, seconds = last_batch
        per_candidate = seconds / max(candidates, 1)
        for size in range(max(most, 1), 0, -1):
            if self.allows(per_candidate * size, refit_seconds):
                return size
        return 0

    def describe(self) -> str:
        return f"{self.seconds / 60:g} min"
