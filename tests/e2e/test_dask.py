"""The training flow on a real Dask cluster (a scheduler and two workers on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from flows.deployments import check_dask_address, train_flow
from tasks.errors import ConfigError
from tasks.model_selection.parallel import cv_parallelism, dask_worker_address
from tests.conftest import (
    PROJECT_ROOT,
    free_port,
    make_frame,
    start_training_in_own_group,
    stop_process,
)
from tests.e2e.test_stop import still_running

SCHEDULER = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` + two single-thread `dask worker`s, with this checkout on their path."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),  # workers unpickle tasks.* and flows.*: same code
        "PREFECT_HOME": str(tmp_path / "prefect-workers"),
    }
    worker = [*WORKER, address, "--nworkers", "1", "--nthreads", "1"]
    commands = {
        "scheduler": [*SCHEDULER, "--port", str(port), "--host", "127.0.0.1", "--no-dashboard"],
        "worker-1": [*worker, "--host", "127.0.0.1", "--no-dashboard"],
        "worker-2": [*worker, "--host", "127.0.0.1", "--no-dashboard"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in commands.items():
            with (tmp_path / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            stop_process(process, grace_seconds=30)


def tiny_config(tmp_path: Path) -> Path:
    data = tmp_path / "tiny.csv"
    make_frame(160, seed=3).to_csv(data, index=False)
    config = {
        "data": str(data),
        "target": "label",
        "models": ["logistic_regression", "decision_tree"],
        "split": {"cv_folds": 2},
        "runs_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.e2e
def test_train_runs_family_searches_on_dask_workers(
    prefect_harness: None, dask_cluster: str, tmp_path: Path
) -> None:
    from distributed import Client

    from flows.runtime import TrainParameters

    run_dir = Path(train_flow(dask_cluster)(TrainParameters(config=str(tiny_config(tmp_path)))))

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert (run_dir / "models" / "best.skops").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {f["family"]: f["status"] for f in metrics["families"]} == {
        "logistic_regression": "completed",
        "decision_tree": "completed",
    }
    with Client(dask_cluster, timeout=30) as client:
        workers = set(client.scheduler_info()["workers"])
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.task_prefixes)
        )
    # each family task ran on a worker of this cluster ...
    assert set(manifest["family_workers"]) == {"logistic_regression", "decision_tree"}
    assert set(manifest["family_workers"].values()) <= workers
    # ... and the CV fits inside went to the cluster through joblib's Dask backend (the fold
    # preparations and the candidates fitted on them: tasks/model_selection/prepared.py)
    assert "search_model_family" in prefixes
    assert any(prefix.startswith("batch_of_fit_and_score") for prefix in prefixes)
    assert any(prefix.startswith("batch_of_fit_preparation") for prefix in prefixes)


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "tcp://127.0.0.1", "http://h:1", "tcp://:1"])
def test_a_malformed_dask_address_is_a_config_error(address: str) -> None:
    with pytest.raises(ConfigError, match="--dask-address"):
        check_dask_address(address)


def test_a_dask_address_gives_the_flow_a_dask_task_runner() -> None:
    from prefect_dask import DaskTaskRunner

    from flows.train import train

    assert train_flow(None) is train
    runner = train_flow("tcp://10.0.0.5:8786").task_runner
    assert isinstance(runner, DaskTaskRunner)
    assert runner.address == "tcp://10.0.0.5:8786"


def test_outside_a_dask_worker_the_cv_runs_locally_with_openmp_capped_in_its_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    def jobs_and_openmp_threads() -> tuple[int, int]:
        with cv_parallelism(2, threads=1) as jobs:
            return jobs, _openmp_effective_n_threads()

    assert dask_worker_address() is None
    with ThreadPoolExecutor(1) as pool:  # a task runner's thread, as in the flow
        assert pool.submit(jobs_and_openmp_threads).result() == (2, 1)


# The stop deadline of issue 12, and how soon after the signal the workers must be idle: far
# sooner than the search below (32 candidates x 5 folds; over a minute on two single-thread
# workers). Small forests: a forest already being fitted when the stop comes is finished first.
STOP_SECONDS = 10
IDLE_SECONDS = 15
START_SECONDS = 240
FOREST_GRID = (
    "{n_estimators: [50], max_depth: [null, 4, 6, 8, 10, 12, 14, 16], "
    "min_samples_leaf: [1, 3, 5, 10]}"
)


def start_training_on(address: str, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`tabpipe train --dask-address` in its own process group, like a command in a terminal."""
    data = tmp_path / "forest.csv"
    make_frame(n_rows=9_000, seed=3).to_csv(data, index=False)
    settings = [
        f"runs_dir={tmp_path / 'runs'}",
        "models=[random_forest]",
        f"grids={{random_forest: {FOREST_GRID}}}",
    ]
    return start_training_in_own_group(
        [
            "--data",
            str(data),
            "--target",
            "label",
            "--dask-address",
            address,
            *(argument for setting in settings for argument in ("--set", setting)),
        ],
        env,
    )


def wait_for_cv_fits(client: Any, process: subprocess.Popen[str]) -> None:
    """Until the family task on a worker has its CV fits running on the cluster."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        keys = [str(key) for keys in client.processing().values() for key in keys]
        if any(key.startswith("batch_of_fit_and_score") for key in keys):
            return
        time.sleep(0.5)
    stop_process(process)  # type: ignore[arg-type]
    pytest.fail("the family search never started its CV fits on the cluster")


def cluster_work(client: Any) -> dict[str, int]:
    """What the scheduler has in processing plus what each worker's threads run (seceded tasks,
    a search waiting on its CV fits, too), by worker."""
    processing = {worker: len(keys) for worker, keys in client.processing().items()}
    running = client.run(  # a lambda travels by value: the workers cannot import this module
        lambda dask_worker: dask_worker.state.executing_count + len(dask_worker.state.long_running)
    )
    return {worker: processing.get(worker, 0) + running.get(worker, 0) for worker in running}


def wait_until_idle(client: Any, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    work = cluster_work(client)
    while any(work.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        work = cluster_work(client)
    return work


@pytest.mark.e2e
def test_ctrl_c_stops_the_run_and_its_searches_on_the_dask_workers(
    dask_cluster: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    from distributed import Client

    process = start_training_on(dask_cluster, tmp_path, cli_env)
    with Client(dask_cluster, timeout=30) as client:
        wait_for_cv_fits(client, process)
        descendants = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGINT)
        signalled = time.monotonic()
        try:
            _, stderr = process.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            stop_process(process)  # type: ignore[arg-type]
            pytest.fail(f"SIGINT did not stop the run within {STOP_SECONDS} s")
        work_left = wait_until_idle(client, IDLE_SECONDS - (time.monotonic() - signalled))

    assert process.returncode == 130
    assert work_left == dict.fromkeys(work_left, 0)  # both workers idle: the search ended there
    time.sleep(0.5)  # a SIGKILLed child is gone at once; give the kernel a moment to reap
    assert still_running(descendants) == []
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Stopped by SIGINT"), stderr
    runs = list((tmp_path / "runs").iterdir())
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert [run.name.startswith(".") for run in runs] == [False]
    assert (manifest["status"], manifest["error"]) == ("failed", "interrupted (SIGINT)")
