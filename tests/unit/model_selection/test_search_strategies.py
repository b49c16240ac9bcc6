"""Search strategies on tiny data: successive halving and a random budget, with the real pipeline
and the list-of-dicts grids (one sub-grid per rebalancing choice) the flow builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from flows.runtime import parallel_plan
from tasks.model_selection.search import FamilyResult
from tests.conftest import make_frame
from tests.unit.model_selection.tiny_search import search_on, tiny_split

REBALANCING = ["class_weight", "random_under"]


def run_search(strategy: str, model_grid: dict[str, list[Any]], n_iter: int = 20) -> FamilyResult:
    split, profile = tiny_split(240, seed=5)
    return search_on(
        split,
        profile,
        "logistic_regression",
        model_grid,
        REBALANCING,
        folds=2,
        strategy=strategy,
        n_iter=n_iter,
    )


def test_halving_searches_every_rebalancing_sub_grid_and_refits_the_best() -> None:
    result = run_search("halving", {"C": [0.01, 0.1, 1.0, 10.0]})

    assert result.status == "completed", result.error
    tried = {(row["params"]["rebalance"], row["params"]["C"]) for row in result.candidates}
    # the first round tries all 8 candidates, later rounds the survivors on more rows
    assert tried == {(r, c) for r in REBALANCING for c in (0.01, 0.1, 1.0, 10.0)}
    assert len(result.candidates) > 8
    assert result.best_params["rebalance"] in REBALANCING
    assert result.estimator is not None
    X = make_frame(20, seed=9).drop(columns="label")
    assert set(result.estimator.predict(X)) <= {"yes", "no"}


def test_random_with_a_budget_larger_than_the_grid_tries_each_candidate_once() -> None:
    result = run_search("random", {"C": [0.1, 1.0]}, n_iter=50)

    assert result.status == "completed", result.error
    tried = [(row["params"]["rebalance"], row["params"]["C"]) for row in result.candidates]
    assert sorted(tried) == sorted((r, c) for r in REBALANCING for c in (0.1, 1.0))


def test_random_with_a_small_budget_tries_only_that_many() -> None:
    result = run_search("random", {"C": [0.01, 0.1, 1.0, 10.0]}, n_iter=3)

    assert result.status == "completed", result.error
    assert len(result.candidates) == 3


def test_the_same_seed_gives_the_same_random_candidates() -> None:
    first = run_search("random", {"C": [0.01, 0.1, 1.0, 10.0]}, n_iter=3)
    second = run_search("random", {"C": [0.01, 0.1, 1.0, 10.0]}, n_iter=3)

    assert [r["params"] for r in first.candidates] == [r["params"] for r in second.candidates]
    assert first.best_score == second.best_score


@pytest.mark.parametrize(
    ("families", "cores", "plan"),
    [
        (2, 2, (2, 1)),
        (6, 2, (2, 1)),
        (1, 2, (1, 2)),
        (2, 8, (2, 4)),
        (3, 8, (3, 2)),
        (4, 1, (1, 1)),
    ],
)
def test_parallel_plan_never_asks_for_more_than_the_cores(
    families: int, cores: int, plan: tuple[int, int]
) -> None:
    concurrent, jobs_per_family = parallel_plan(families, cores)

    assert (concurrent, jobs_per_family) == plan
    assert concurrent * jobs_per_family <= cores


@pytest.mark.parametrize("search", [{"strategy": "halving"}, {"strategy": "random", "n_iter": 3}])
def test_the_flow_searches_with_the_configured_strategy(
    prefect_harness: None, tmp_path: Path, search: dict[str, Any]
) -> None:
    from flows.runtime import TrainParameters
    from flows.train import train

    data = tmp_path / "tiny.csv"
    make_frame(200, seed=4).to_csv(data, index=False)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": str(data),
                "target": "label",
                "models": ["logistic_regression"],
                "grids": {"logistic_regression": {"C": [0.01, 0.1, 1.0, 10.0]}},
                "rebalance": REBALANCING,
                "search": search,
                "split": {"cv_folds": 2},
                "runs_dir": str(tmp_path / "runs"),
            }
        ),
        encoding="utf-8",
    )

    run_dir = Path(train(TrainParameters(config=str(config))))

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["config"]["search"]["strategy"] == search["strategy"]
    cv_results = pd.read_csv(run_dir / "cv_results.csv")
    if search["strategy"] == "halving":  # 8 candidates, then the survivors on more rows
        assert len(cv_results) > 8
        assert cv_results["params"].nunique() == 8
    else:
        assert len(cv_results) == 3
