"""A small search (few rows, few fits) runs in the task threads; any other uses the pool."""

from __future__ import annotations

from types import SimpleNamespace

from sklearn.model_selection import KFold

from flows.runtime import available_cores
from flows.train import POOL_MIN_FITS, worker_processes
from tasks.config import build_config
from tasks.model_selection.pipeline import candidate_count, default_families


def test_a_tiny_search_stays_in_threads_and_the_default_one_uses_the_cores() -> None:
    profile = SimpleNamespace(task="binary", roughly_balanced=False)
    tiny = build_config(
        {
            "data": "d.csv",
            "target": "y",
            "models": ["logistic_regression", "hist_gradient_boosting"],
            "grids": {"logistic_regression": {"C": [0.1, 1.0]}, "hist_gradient_boosting": {}},
        },
        "test",
    )
    # 2 + 1 candidates (class weights: one rebalancing choice each), 3 folds: 9 fits.
    assert (
        candidate_count(
            "logistic_regression",
            "binary",
            grids=tiny.grids,
            rebalance=list(tiny.rebalance),
            roughly_balanced=False,
        )
        == 2
    )
    assert worker_processes(tiny, profile, list(tiny.models), KFold(3), 400) == 1
    assert (
        worker_processes(tiny, profile, list(tiny.models), KFold(3), 100_000) == available_cores()
    )
    default = build_config({"data": "d.csv", "target": "y"}, "test")
    families = default_families("binary")
    fits = 5 * sum(
        candidate_count(f, "binary", grids={}, rebalance=["auto"], roughly_balanced=False)
        for f in families
    )
    assert fits >= POOL_MIN_FITS
    assert worker_processes(default, profile, families, KFold(5), 300) == available_cores()
    assert (
        worker_processes(default.model_copy(update={"n_jobs": 3}), profile, families, KFold(5), 300)
        == 3
    )
