"""A stopped run ends its searches on a Dask cluster: the stop check on a real in-process cluster
(one worker, threads only), and its absence outside one."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tasks.model_selection.parallel import (
    SearchStopped,
    cluster_stop,
    cv_parallelism,
    request_stop,
)
from tasks.model_selection.search import FamilyResult
from tests.conftest import PROJECT_ROOT
from tests.unit.model_selection.tiny_search import search_on, tiny_split


def stop_requested_on_a_worker(flow_run_id: str) -> bool | None:
    """What a search on a worker learns of its run's stop request (None: it has no check)."""
    stop = cluster_stop(flow_run_id)
    return None if stop is None else stop.requested()


def search_on_a_worker(flow_run_id: str) -> FamilyResult:
    """A tiny logistic regression search of the run, its CV fits spread over the cluster."""
    split, profile = tiny_split(120, seed=1)
    with cv_parallelism(1) as cv_jobs:
        return search_on(
            split,
            profile,
            "logistic_regression",
            {"C": [0.1, 1.0]},
            ["class_weight"],
            n_jobs=cv_jobs,
            stop=cluster_stop(flow_run_id),
        )


def test_a_worker_sees_the_stop_request_of_its_own_run_only(local_dask: Any) -> None:
    assert local_dask.submit(stop_requested_on_a_worker, "run-going-on").result() is False

    request_stop(local_dask.scheduler.address, ["run-stopped"], timeout=10)

    assert local_dask.submit(stop_requested_on_a_worker, "run-stopped").result() is True
    assert (
        local_dask.submit(stop_requested_on_a_worker, "run-going-on", pure=False).result() is False
    )


def test_a_search_of_a_stopped_run_raises_on_the_worker_and_others_complete(
    local_dask: Any,
) -> None:
    request_stop(local_dask.scheduler.address, ["stopped-search"], timeout=10)

    with pytest.raises(SearchStopped, match="the run stopped"):
        local_dask.submit(search_on_a_worker, "stopped-search").result()
    assert local_dask.submit(search_on_a_worker, "running-search").result().status == "completed"


def test_outside_a_dask_worker_there_is_no_check_and_distributed_stays_unimported() -> None:
    script = (
        "import sys; from tasks.model_selection.parallel import cluster_stop; "
        "print(cluster_stop('any-run'), 'distributed' in sys.modules)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.split() == ["None", "False"]
