"""The stopping side of `tabpipe train --dask-address`: a stop sets the stop event of each of the
process's flow runs on the cluster (also of runs already marked failed, as a cancellation in the
UI leaves them), once, and a scheduler that does not answer adds nothing to stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flows.cli import stop
from tasks.model_selection.parallel import stop_event_name
from tasks.run.outputs import RunWriter
from tests.conftest import free_port


@pytest.fixture
def fresh_stop_state(monkeypatch: pytest.MonkeyPatch) -> stop.StopState:
    """This test's own stop state, and no runs of earlier tests."""
    state = stop.StopState()
    monkeypatch.setattr(stop, "STATE", state)
    monkeypatch.setattr(RunWriter, "open_writers", [])
    monkeypatch.setattr(RunWriter, "failed_runs", [])
    return state


def failed_run(tmp_path: Path, flow_run_id: str) -> Path:
    """A run directory as a stop leaves it: in place, its manifest naming the flow run."""
    run_dir = tmp_path / f"run-{flow_run_id}"
    run_dir.mkdir()
    manifest = {"status": "failed", "flow_run_id": flow_run_id}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def event_is_set(client: Any, flow_run_id: str) -> bool:
    from distributed import Event

    return bool(Event(stop_event_name(flow_run_id), client=client).is_set())


def test_a_stop_sets_the_cluster_event_of_each_run_of_the_process(
    fresh_stop_state: stop.StopState, local_dask: Any, tmp_path: Path
) -> None:
    RunWriter.failed_runs.extend([failed_run(tmp_path, "run-a"), failed_run(tmp_path, "run-b")])
    stop.stop_searches_on(local_dask.scheduler.address)

    stop.stop_cluster_searches()
    stop.await_cluster_stop()

    assert event_is_set(local_dask, "run-a") and event_is_set(local_dask, "run-b")
    assert not event_is_set(local_dask, "run-of-another-process")


def test_without_a_cluster_a_stop_asks_nothing(fresh_stop_state: stop.StopState) -> None:
    stop.stop_searches_on(None)
    stop.stop_cluster_searches()
    assert fresh_stop_state.cluster_stop is None


def test_a_scheduler_that_does_not_answer_adds_nothing_to_stderr(
    fresh_stop_state: stop.StopState, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    RunWriter.failed_runs.append(failed_run(tmp_path, "run-c"))
    stop.stop_searches_on(f"tcp://127.0.0.1:{free_port()}")  # nothing listens there

    stop.stop_cluster_searches()
    stop.await_cluster_stop()  # returns after CLUSTER_STOP_SECONDS at most; the exit comes next

    request = fresh_stop_state.cluster_stop
    assert request is not None
    request.join(timeout=60)  # here, unlike at a real stop, let the request give up on its own
    assert capfd.readouterr().err == ""
