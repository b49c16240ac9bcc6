"""search.time_budget: what does not fit is skipped with a note, and the run still ends with a
model. Budgets here are far below one fit, so the behaviour does not depend on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sklearn.model_selection import ParameterGrid

from tasks.errors import ConfigError
from tasks.model_selection.budget import (
    SearchBudget,
    by_expected_value_per_second,
    cheapest_first,
)
from tasks.model_selection.parallel import end_worker_fits, start_worker_pool
from tasks.model_selection.search import FamilyResult
from tests.conftest import make_frame
from tests.unit.model_selection.tiny_search import search_on, tiny_split

TREE_GRID = {"max_depth": [2, 3, 4, 5, None], "min_samples_leaf": [1, 2, 5]}  # 15 candidates

TINY = 1e-6  # minutes: 60 microseconds, spent before the first fit ends


def budgeted_search(family: str, budget: SearchBudget) -> FamilyResult:
    split, profile = tiny_split(300, positive_share=0.3, seed=2)
    model_grid = TREE_GRID if family == "decision_tree" else {"C": [0.1, 1.0, 10.0]}
    return search_on(split, profile, family, model_grid, ["class_weight"], budget=budget)


def test_a_spent_budget_skips_the_remaining_candidates_with_a_note_and_keeps_a_model() -> None:
    result = budgeted_search("decision_tree", SearchBudget(TINY))

    assert result.status == "completed"
    assert result.estimator is not None  # the first candidate always runs: a run needs a model
    assert 1 <= len(result.candidates) < 15
    assert len(result.notes) == 1
    assert f"{15 - len(result.candidates)} of 15 candidates not tried" in result.notes[0]


def test_under_a_budget_a_family_scores_one_candidate_before_it_runs_batches() -> None:
    """Nothing can be ended before some candidate has a score (the run needs a model), so the
    first batch is the smallest: one candidate, even with two workers."""
    split, profile = tiny_split(300, positive_share=0.3, seed=2)
    result = search_on(
        split,
        profile,
        "decision_tree",
        TREE_GRID,
        ["class_weight"],
        n_jobs=2,
        budget=SearchBudget(TINY),
    )

    assert len(result.candidates) == 1
    assert "14 of 15 candidates not tried" in result.notes[0]


def test_a_batch_holds_as_many_candidates_as_fit_at_the_last_batchs_pace() -> None:
    budget = SearchBudget(1.0)  # 60 s, of which this test spends milliseconds

    assert budget.batch_size(most=2, last_batch=None, refit_seconds=0.0) == 1
    assert budget.batch_size(most=2, last_batch=(1, 20.0), refit_seconds=0.0) == 2
    assert budget.batch_size(most=2, last_batch=(1, 40.0), refit_seconds=0.0) == 1
    assert budget.batch_size(most=2, last_batch=(1, 20.0), refit_seconds=30.0) == 1
    assert budget.batch_size(most=2, last_batch=(2, 130.0), refit_seconds=0.0) == 0


def test_a_budgeted_search_tries_the_smallest_fits_first() -> None:
    forest = list(ParameterGrid({"model__max_depth": [None, 8], "model__min_samples_leaf": [1, 3]}))
    linear = list(ParameterGrid({"model__C": [10.0, 0.1, 1.0]}))

    ordered = cheapest_first(forest)

    assert ordered[0] == {"model__max_depth": 8, "model__min_samples_leaf": 3}
    assert ordered[-1] == {"model__max_depth": None, "model__min_samples_leaf": 1}
    assert cheapest_first(linear) == linear  # nothing bounds a fit's size: the grid's order


def test_a_family_that_starts_after_the_budget_is_spent_is_skipped_with_a_note() -> None:
    budget = SearchBudget(TINY)
    first = budgeted_search("logistic_regression", budget)
    second = budgeted_search("decision_tree", budget)

    assert first.status == "completed"
    assert second.status == "skipped"
    assert second.candidates == [] and second.estimator is None
    assert "15 of 15 candidates not tried" in second.notes[0]


def test_a_generous_budget_tries_every_candidate_without_notes() -> None:
    result = budgeted_search("decision_tree", SearchBudget(60))

    assert len(result.candidates) == 15
    assert result.notes == []


def test_budgeted_families_start_by_expected_value_per_second() -> None:
    order = by_expected_value_per_second(["svm", "knn", "logistic_regression", "my_family"])
    assert order == ["logistic_regression", "knn", "svm", "my_family"]


def test_halving_with_a_time_budget_is_a_config_error(tmp_path: Path) -> None:
    from tasks.config import build_config

    raw = {"data": "x.csv", "target": "y", "search": {"strategy": "halving", "time_budget": 1}}
    with pytest.raises(ConfigError, match="time_budget"):
        build_config(raw, "configs/x.yaml")


def test_the_flow_completes_within_a_tiny_budget_and_says_what_it_skipped(
    prefect_harness: None, tmp_path: Path
) -> None:
    from flows.runtime import TrainParameters
    from flows.train import train

    data = tmp_path / "tiny.csv"
    make_frame(300, seed=4).to_csv(data, index=False)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": str(data),
                "target": "label",
                "models": ["decision_tree", "logistic_regression"],
                "grids": {"decision_tree": TREE_GRID},
                "rebalance": ["class_weight"],
                "search": {"time_budget": TINY},
                "split": {"cv_folds": 3},
                "runs_dir": str(tmp_path / "runs"),
            }
        ),
        encoding="utf-8",
    )

    run_dir = Path(train(TrainParameters(config=str(config))))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"
    notes = [note for family in metrics["families"] for note in family.get("notes", [])]
    assert any("candidates not tried" in note for note in notes)
    tried = sum(len(family["candidates"]) for family in metrics["families"])
    assert tried < 15 + 3
    assert metrics["best_model"]["family"] in {"decision_tree", "logistic_regression"}
    audit = json.loads((run_dir / "leakage_audit.json").read_text())
    assert audit["no_leakage_found"] and audit["shared_preparations"]


def test_the_deadline_ends_fits_in_flight_and_the_family_keeps_what_finished() -> None:
    """The second batch's fits would run for minutes; the watch ends them at the deadline (it
    kills the CV workers), and the family keeps the first batch, which finished in time."""
    split, profile = tiny_split(300, positive_share=0.3, seed=2)
    start_worker_pool(2)  # warm, so the first batch is not spent starting processes
    budget = SearchBudget(0.2)  # 12 s: the first batch takes well under a second
    end_watch = budget.watch(end_worker_fits)
    try:
        result = search_on(
            split,
            profile,
            "hist_gradient_boosting",
            {"max_iter": [2, 3, 4, 100_000, 100_001]},  # batches [2], [3, 4], then endless
            ["class_weight"],
            n_jobs=2,
            budget=budget,
        )
    finally:
        end_watch()

    assert budget.cut
    assert result.status == "completed"
    assert [c["params"]["max_iter"] for c in result.candidates] == [2, 3, 4]
    assert "2 of 5 candidates not tried" in result.notes[0]
    assert result.estimator is not None
