"""One Prefect home per project: `tabpipe server start` runs the server in the background with the
project's .prefect/, every command then reports to it (and prints its run's page in the UI), and
`tabpipe server stop` stops it by its PID. A PREFECT_API_URL that nobody answers is one sentence."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import PROJECT_ROOT, free_port, make_frame, shared_memory_left_by

pytestmark = pytest.mark.e2e

LINK = re.compile(r"In the Prefect UI: (http://127\.0\.0\.1:\d+)/runs/flow-run/([0-9a-f-]{36})")


def tabpipe(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli.main", *args],
        cwd=project,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a configs/ folder (what marks the root) and a data file."""
    (tmp_path / "configs").mkdir()
    make_frame(n_rows=120).to_csv(tmp_path / "tiny.csv", index=False)
    return tmp_path


@pytest.fixture
def env() -> dict[str, str]:
    """No PREFECT_HOME and no PREFECT_API_URL: the project's own home decides."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    return {**clean, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


@pytest.fixture
def server(project: Path, env: dict[str, str]) -> Iterator[dict[str, object]]:
    port = free_port()
    started = tabpipe(project, "server", "start", "--port", str(port), env=env)
    state_file = project / ".prefect" / "tabpipe-server.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        yield state
    finally:
        tabpipe(project, "server", "stop", env=env)
        for key in ("pid", "reports_pid"):  # the test's own servers, by their PIDs
            if state.get(key) and psutil.pid_exists(int(state[key])):
                psutil.Process(int(state[key])).kill()


def test_runs_report_to_the_project_server_and_print_their_page(
    project: Path, env: dict[str, str], server: dict[str, object]
) -> None:
    port, pid = int(server["port"]), int(server["pid"])  # type: ignore[call-overload]
    assert Path(str(server["home"])) == project / ".prefect"
    status = tabpipe(project, "server", "status", env=env)
    assert status.returncode == 0 and f"PID {pid}" in status.stdout

    trained = tabpipe(
        project,
        *("train", "--data", "tiny.csv", "--target", "label"),
        *("--set", "models=[logistic_regression]", "--set", "split.cv_folds=2"),
        env=env,
    )
    assert trained.returncode == 0, trained.stderr
    link = LINK.search(trained.stdout)
    assert link is not None, trained.stdout
    assert link.group(1) == f"http://127.0.0.1:{port}"
    flow_run = httpx.get(f"http://127.0.0.1:{port}/api/flow_runs/{link.group(2)}", timeout=10)
    assert flow_run.json()["state_type"] == "COMPLETED"
    page = httpx.get(link.group(0).split(": ", 1)[1], headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "<html" in page.text

    # The UI's report link opens over HTTP (browsers refuse file:// links from a page).
    (run,) = [d for d in (project / "runs").iterdir() if d.is_dir() and d.name[0] != "."]
    reports_pid, reports_port = int(server["reports_pid"]), int(server["reports_port"])  # type: ignore[call-overload]
    report_url = f"http://127.0.0.1:{reports_port}/{run.name}/report.html"
    report = httpx.get(report_url, timeout=10)
    assert report.status_code == 200 and "<html" in report.text.lower()
    links = httpx.post(
        f"http://127.0.0.1:{port}/api/artifacts/filter",
        json={},  # a link artifact is stored as markdown: look through all of them
        timeout=10,
    ).json()
    assert any(report_url in str(artifact.get("data")) for artifact in links), links

    stopped = tabpipe(project, "server", "stop", env=env)
    assert stopped.returncode == 0 and f"PID {pid}" in stopped.stdout
    for stopped_pid in (pid, reports_pid):
        assert (
            not psutil.pid_exists(stopped_pid)
            or psutil.Process(stopped_pid).status() == psutil.STATUS_ZOMBIE
        )
    assert tabpipe(project, "server", "status", env=env).returncode == 1


def test_an_unreachable_api_url_is_one_sentence(project: Path, env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    answered = tabpipe(
        project,
        "train",
        "--data",
        "tiny.csv",
        "--target",
        "label",
        env={**env, "PREFECT_API_URL": url},
    )
    assert answered.returncode == 2
    lines = answered.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "tabpipe server start" in lines[0]


def test_cancelling_in_the_ui_stops_the_run_and_what_it_started(
    project: Path, env: dict[str, str], server: dict[str, object]
) -> None:
    api = f"http://127.0.0.1:{server['port']}/api"
    make_frame(n_rows=9_000, seed=3).to_csv(project / "big.csv", index=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "train", "--data", "big.csv", "--target", "label"],
        cwd=project,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        flow_run_id = wait_for_running_flow_run(api)
        time.sleep(3)  # into the search, with its CV worker processes
        descendants = psutil.Process(process.pid).children(recursive=True)
        httpx.post(
            f"{api}/flow_runs/{flow_run_id}/set_state",
            json={"state": {"type": "CANCELLING"}, "force": True},
            timeout=10,
        ).raise_for_status()
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143
    assert stderr.strip().startswith("Cancelled in the Prefect UI"), stderr
    assert [p.pid for p in descendants if p.is_running() and p.status() != "zombie"] == []
    assert shared_memory_left_by(process.pid) == []
    (run,) = (project / "runs").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert (manifest["status"], manifest["error"]) == ("failed", "cancelled in the Prefect UI")


def wait_for_running_flow_run(api: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    running = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
    while time.monotonic() < deadline:
        found = httpx.post(f"{api}/flow_runs/filter", json=running, timeout=10).json()
        if found:
            return str(found[0]["id"])
        time.sleep(0.5)
    pytest.fail("the train flow run never started")
