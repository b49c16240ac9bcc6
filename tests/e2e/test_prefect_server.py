"""End to end against a real `prefect server start`: serve deployments, run them through the API,
read the artifacts back by key, look at them in headless chromium, and let a schedule fire."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prefect.client.base import PrefectHttpxSyncClient
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.deployments import refuse_work_pool_deployments
from tasks.errors import ConfigError
from tests.conftest import PROJECT_ROOT, free_port, make_frame, stop_process

pytestmark = pytest.mark.e2e

PREFECT_BIN = Path(sys.executable).with_name("prefect")
SCREENSHOTS_DIR = PROJECT_ROOT / "runs" / "ui-screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,2400",
    "--virtual-time-budget=15000",
]
SERVER_START_SECONDS = 120
RUN_FINISH_SECONDS = 180
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DATA_URI_PNG = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(probe: Callable[[], Any], timeout: float, what: str, log: Path | None = None) -> Any:
    """Poll until probe() returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen in {timeout} s" + (f"\n{log_tail(log)}" if log else ""))


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    env: dict[str, str]
    home: Path

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def client(self) -> httpx.Client:
        """REST calls that retry a 503 (SQLite busy under load) as Prefect's own client does."""
        return PrefectHttpxSyncClient(base_url=self.api_url, timeout=30, raise_on_all_errors=False)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real server for every e2e test (about 9 s to start), stopped by its PID."""
    home = tmp_path_factory.mktemp("prefect-server")
    api_url = f"http://127.0.0.1:{free_port()}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect-home"),
        # Its own address, or the UI calls port 4200 and shows "Unable to connect".
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    port = api_url.rsplit(":", 1)[1].removesuffix("/api")
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PREFECT_BIN), "server", "start", "--host", "127.0.0.1", "--port", port],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        server = PrefectServer(api_url, env, home)
        wait_for(lambda: healthy(server), SERVER_START_SECONDS, "Prefect server health", log)
        yield server
    finally:
        stop_process(process)


def healthy(server: PrefectServer) -> bool:
    try:
        return httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def write_config(path: Path, name: str, data: Path, runs_dir: Path, extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"name: {name}\ndata: {data}\ntarget: label\nmodels: [logistic_regression]\n"
        f"split:\n  cv_folds: 2\nseed: 3\nruns_dir: {runs_dir}\n{extra}",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Project:
    root: Path
    configs_dir: Path
    scheduled_configs_dir: Path

    def runs_dir(self, name: str) -> Path:
        return self.root / "runs" / name


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Tiny data and configs: `broken` fails validation, `ticking` runs each minute."""
    root = tmp_path_factory.mktemp("project")
    tiny = root / "tiny.csv"
    make_frame(n_rows=80, seed=1).to_csv(tiny, index=False)
    broken = root / "broken.csv"
    frame = make_frame(n_rows=80, seed=2)
    frame.loc[[3, 7], "x1"] = np.inf  # no estimator can use an infinite value
    frame.to_csv(broken, index=False)
    project = Project(root, root / "configs", root / "scheduled")
    write_config(project.configs_dir / "tiny.yaml", "tiny", tiny, project.runs_dir("tiny"))
    write_config(project.configs_dir / "broken.yaml", "broken", broken, project.runs_dir("broken"))
    write_config(
        project.scheduled_configs_dir / "ticking.yaml",
        "ticking",
        tiny,
        project.runs_dir("ticking"),
        extra='schedule:\n  cron: "* * * * *"\n',
    )
    return project


def start_serving(
    server: PrefectServer, configs_dir: Path, log: Path, limit: int = 1
) -> subprocess.Popen[bytes]:
    """`tabpipe serve` from the project root (the deployments' entrypoint is flows/train.py)."""
    command = [sys.executable, "-m", "flows.cli.main", "serve", "--configs-dir", str(configs_dir)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "--poll-seconds", "1", "--limit", str(limit)],
            cwd=PROJECT_ROOT,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def deployment(server: PrefectServer, name: str) -> dict[str, Any] | None:
    with server.client() as client:
        response = client.get(f"/deployments/name/train/{name}")
    return response.json() if response.status_code == 200 else None


@dataclass(frozen=True)
class Serving:
    log: Path
    scheduled: subprocess.Popen[bytes]
    scheduled_log: Path


@pytest.fixture(scope="session")
def serving(prefect_server: PrefectServer, project: Project) -> Iterator[Serving]:
    """Two `tabpipe serve` processes: the tiny configs (runs started through the API), and the
    every-minute `ticking` config, started early so its wait overlaps the other tests."""
    log, scheduled_log = project.root / "serve.log", project.root / "serve-scheduled.log"
    served = start_serving(prefect_server, project.configs_dir, log, limit=2)
    scheduled = start_serving(prefect_server, project.scheduled_configs_dir, scheduled_log)
    try:
        for name in ("tiny", "broken"):
            wait_for(lambda n=name: deployment(prefect_server, n), 120, f"deployment {name}", log)
        yield Serving(log, scheduled, scheduled_log)
    finally:
        stop_process(served)
        stop_process(scheduled)


def flow_run(server: PrefectServer, flow_run_id: str) -> dict[str, Any]:
    with server.client() as client:
        return dict(client.get(f"/flow_runs/{flow_run_id}").raise_for_status().json())


def start_flow_run(
    server: PrefectServer, name: str, parameters: dict[str, Any] | None = None
) -> str:
    """Start a run of train/<name> through the REST API, as the UI's Run button does."""
    target = deployment(server, name)
    assert target is not None, f"no deployment train/{name}"
    body = {} if parameters is None else {"parameters": parameters}
    with server.client() as client:
        created = client.post(f"/deployments/{target['id']}/create_flow_run", json=body)
    return str(created.raise_for_status().json()["id"])


def wait_until_finished(server: PrefectServer, flow_run_id: str, log: Path) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = flow_run(server, flow_run_id)
        return run if run["state_type"] in FINAL_STATES else None

    return dict(wait_for(finished, RUN_FINISH_SECONDS, f"flow run {flow_run_id}", log))


def run_dir_of(runs_dir: Path, flow_run_id: str) -> Path:
    """The run directory whose manifest names this Prefect flow run."""
    for manifest in runs_dir.glob("*/manifest.json"):
        if json.loads(manifest.read_text())["flow_run_id"] == flow_run_id:
            return manifest.parent
    raise AssertionError(f"no run directory under {runs_dir} for flow run {flow_run_id}")


def artifacts_by_key(server: PrefectServer, flow_run_id: str) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        response = client.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        )
    return {artifact["key"]: artifact for artifact in response.raise_for_status().json()}


@dataclass(frozen=True)
class FinishedRun:
    flow_run: dict[str, Any]
    run_dir: Path
    artifacts: dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def served_runs(
    prefect_server: PrefectServer, project: Project, serving: Serving
) -> dict[str, FinishedRun]:
    """A run of train/tiny and one of train/broken, started together, each to its final state."""
    run_ids = {name: start_flow_run(prefect_server, name) for name in ("tiny", "broken")}
    finished = {}
    for name, run_id in run_ids.items():
        run = wait_until_finished(prefect_server, run_id, serving.log)
        finished[name] = FinishedRun(
            run,
            run_dir_of(project.runs_dir(name), run_id),
            artifacts_by_key(prefect_server, run_id),
        )
    return finished


@pytest.fixture(scope="session")
def tiny_run(served_runs: dict[str, FinishedRun], serving: Serving) -> FinishedRun:
    assert served_runs["tiny"].flow_run["state_type"] == "COMPLETED", log_tail(serving.log)
    return served_runs["tiny"]


def test_served_run_artifacts_match_the_run_directory(tiny_run: FinishedRun) -> None:
    artifacts, run_dir = tiny_run.artifacts, tiny_run.run_dir
    keys = {"leaderboard-tiny", "run-summary-tiny", "history-tiny", "search-progress", "run-report"}
    assert keys <= set(artifacts)

    assert artifacts["leaderboard-tiny"]["type"] == "table"
    leaderboard = json.loads((run_dir / "leaderboard.json").read_text())
    assert json.loads(artifacts["leaderboard-tiny"]["data"]) == leaderboard

    summary = artifacts["run-summary-tiny"]["data"]
    best_family = json.loads((run_dir / "metrics.json").read_text())["best_model"]["family"]
    assert f"best model `{best_family}`" in summary
    inline_plots = [base64.b64decode(png) for png in DATA_URI_PNG.findall(summary)]
    plot_files = ("confusion_matrix.png", "roc.png", "precision_recall.png")
    assert inline_plots == [(run_dir / "plots" / name).read_bytes() for name in plot_files]
    assert all(len(png) < 1_000_000 for png in inline_plots)

    assert float(artifacts["search-progress"]["data"]) == 100.0
    assert (run_dir / "report.html").as_uri() in artifacts["run-report"]["data"]

    history = json.loads(artifacts["history-tiny"]["data"])
    assert history[0]["run"] == run_dir.name
    assert history[0]["best family"] == best_family
    assert history[0]["test metric"].startswith(
        json.loads((run_dir / "metrics.json").read_text())["selection_metric"]
    )


def test_served_run_is_named_tagged_and_has_a_task_per_family(
    prefect_server: PrefectServer, tiny_run: FinishedRun
) -> None:
    assert re.fullmatch(r"tiny-\d{8}-\d{6}", tiny_run.flow_run["name"])
    assert {"tabpipe", "dataset:tiny"} <= set(tiny_run.flow_run["tags"])
    with prefect_server.client() as client:
        task_runs = client.post(
            "/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [tiny_run.flow_run["id"]]}}},
        ).json()
    assert "search-logistic_regression" in {task_run["name"] for task_run in task_runs}
    # Tags stay on the flow run: a tagged task run waits for the server's concurrency slots.
    assert [task_run["tags"] for task_run in task_runs] == [[]] * len(task_runs)


def test_deployments_have_a_prefilled_form_and_their_configs_schedule(
    prefect_server: PrefectServer, project: Project, serving: Serving
) -> None:
    tiny = deployment(prefect_server, "tiny")
    assert tiny is not None
    assert tiny["parameters"]["params"]["config"] == str(project.configs_dir / "tiny.yaml")
    assert "TrainParameters" in json.dumps(tiny["parameter_openapi_schema"])
    assert tiny["tags"] == ["tabpipe", "dataset:tiny"]
    assert tiny["schedules"] == []


def test_failed_validation_publishes_every_failure_case(
    served_runs: dict[str, FinishedRun],
) -> None:
    broken = served_runs["broken"]
    assert broken.flow_run["state_type"] == "FAILED"
    cases = pd.read_csv(
        broken.run_dir / "validation" / "failure_cases.csv", dtype=str, keep_default_na=False
    )
    artifact = broken.artifacts["validation-failures"]
    assert json.loads(artifact["data"]) == cases.to_dict(orient="records")
    assert set(cases["column"]) == {"x1"}
    assert "leaderboard-broken" not in broken.artifacts


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (`make browser` installs it)")
    return path


def open_in_chromium(url: str, screenshot: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, and a screenshot of it."""
    browser = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    subprocess.run(
        [*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True
    )
    return dom


def test_ui_shows_the_artifacts_best_model_and_plots(
    prefect_server: PrefectServer, tiny_run: FinishedRun, tmp_path: Path
) -> None:
    shutil.rmtree(SCREENSHOTS_DIR, ignore_errors=True)  # keep only the last run's pictures
    SCREENSHOTS_DIR.mkdir(parents=True)
    best_family = json.loads((tiny_run.run_dir / "metrics.json").read_text())["best_model"]
    run_page = f"{prefect_server.ui_url}/v2/runs/flow-run/{tiny_run.flow_run['id']}?tab=Artifacts"
    dom = open_in_chromium(run_page, SCREENSHOTS_DIR / "flow-run-artifacts.png", tmp_path)
    assert tiny_run.flow_run["name"] in dom
    for key in ("leaderboard-tiny", "run-summary-tiny", "history-tiny", "run-report"):
        assert key in dom
    assert f"best {best_family['family']}" in dom  # the leaderboard card's description

    artifact_page = f"{prefect_server.ui_url}/v2/artifacts/artifact"
    summary_page = f"{artifact_page}/{tiny_run.artifacts['run-summary-tiny']['id']}"
    dom = open_in_chromium(summary_page, SCREENSHOTS_DIR / "run-summary.png", tmp_path)
    assert best_family["family"] in dom
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) == 3

    leaderboard_page = f"{artifact_page}/{tiny_run.artifacts['leaderboard-tiny']['id']}"
    dom = open_in_chromium(leaderboard_page, SCREENSHOTS_DIR / "leaderboard.png", tmp_path)
    assert "<table" in dom and best_family["family"] in dom

    history_page = f"{artifact_page}/{tiny_run.artifacts['history-tiny']['id']}"
    dom = open_in_chromium(history_page, SCREENSHOTS_DIR / "history-tiny.png", tmp_path)
    assert "<table" in dom and tiny_run.run_dir.name in dom
    assert all(path.stat().st_size > 0 for path in SCREENSHOTS_DIR.glob("*.png"))


def deployment_runs(server: PrefectServer, deployment_id: str) -> list[dict[str, Any]]:
    with server.client() as client:
        response = client.post(
            "/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}}
        )
    return list(response.raise_for_status().json())


def test_cron_schedule_runs_on_its_own_and_sigterm_stops_serving(
    prefect_server: PrefectServer, project: Project, serving: Serving
) -> None:
    log = serving.scheduled_log
    ticking = wait_for(lambda: deployment(prefect_server, "ticking"), 120, "deployment", log)
    assert ticking["schedules"][0]["schedule"]["cron"] == "* * * * *"

    def completed_run() -> dict[str, Any] | None:
        runs = deployment_runs(prefect_server, ticking["id"])
        return next((r for r in runs if r["state_type"] == "COMPLETED"), None)

    run = wait_for(completed_run, 60 + RUN_FINISH_SECONDS, "a scheduled run", log)
    assert "auto-scheduled" in run["tags"]
    assert run_dir_of(project.runs_dir("ticking"), run["id"]).is_dir()

    assert stop_process(serving.scheduled) == 0, log_tail(log)
    # The runner pauses its schedules when it stops, so no runs pile up while nobody serves.
    paused = deployment(prefect_server, "ticking")
    assert paused is not None and paused["paused"] is True


def prefect_cli(server: PrefectServer, *command: str) -> None:
    done = subprocess.run(
        [str(PREFECT_BIN), "--no-prompt", *command],
        cwd=PROJECT_ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_prefect_yaml_deploys_to_a_process_worker(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    """README's three commands: create the pool, deploy prefect.yaml, start a worker."""
    prefect_cli(prefect_server, "work-pool", "create", "tabpipe", "--type", "process")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(PREFECT_BIN), "worker", "start", "--pool", "tabpipe"],
            cwd=tmp_path,  # the deployment's pull step, not the worker's folder, finds the code
            env={
                **prefect_server.env,
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                # the form may write runs here too (docs/prefect.md, what the run form may change)
                "TABPIPE_DEPLOYMENT_ROOTS": f"{PROJECT_ROOT}{os.pathsep}{tmp_path}",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        prefect_cli(prefect_server, "deploy", "--all")
        penguins = deployment(prefect_server, "penguins")
        assert penguins is not None and penguins["work_pool_name"] == "tabpipe"
        assert penguins["parameters"] == {"params": {"config": "configs/penguins.yaml"}}
        with (
            temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}),
            pytest.raises(ConfigError, match="prefect deployment delete train/penguins"),
        ):
            refuse_work_pool_deployments(["penguins"])  # serving it too would break it

        small = ["models=[logistic_regression]", "split.cv_folds=2", f"runs_dir={tmp_path}"]
        params = {"params": {"config": "configs/penguins.yaml", "overrides": small}}
        run_id = start_flow_run(prefect_server, "penguins", params)
        run = wait_until_finished(prefect_server, run_id, log)
    finally:
        stop_process(worker)
    assert run["state_type"] == "COMPLETED", log_tail(log)
    manifest = json.loads((run_dir_of(tmp_path, run_id) / "manifest.json").read_text())
    assert manifest["status"] == "completed"


def test_the_deployment_form_cannot_run_code_or_write_elsewhere(
    prefect_server: PrefectServer, project: Project, serving: Serving, tmp_path: Path
) -> None:
    """Anyone who reaches the (unauthenticated) server fills the form: a Python schema is never
    imported and runs_dir cannot leave the served project; each run fails with one sentence."""
    marker = tmp_path / "pwned"
    evil = project.root / "form_evil.py"  # even inside the served project: not from the form
    evil.write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\nX = 1\n")
    config = str(project.configs_dir / "tiny.yaml")
    outside = tmp_path / "elsewhere"
    hostile = {
        "schema": [f"schema={evil}:X"],
        "runs_dir": [f"runs_dir={outside}"],
        "grids": ["grids.logistic_regression.C=[1.0]"],
    }
    run_ids = {
        name: start_flow_run(
            prefect_server, "tiny", {"params": {"config": config, "overrides": overrides}}
        )
        for name, overrides in hostile.items()
    }
    messages = {}
    for name, run_id in run_ids.items():
        run = wait_until_finished(prefect_server, run_id, serving.log)
        assert run["state_type"] == "FAILED", name
        messages[name] = run["state"]["message"]
    assert "must be a YAML schema file" in messages["schema"]
    assert f"'runs_dir' ({outside}) lies outside the deployment roots" in messages["runs_dir"]
    assert (
        "key 'grids.logistic_regression.C' cannot be set from a deployment form"
        in (messages["grids"])
    )
    assert not marker.exists()
    assert not outside.exists()


# `tabpipe serve` must stop this soon after SIGTERM, even with a run in progress (issue 17).
SERVE_STOP_SECONDS = 10


def processes_of_flow_run(flow_run_id: str) -> list[int]:
    """PIDs whose environment names this flow run (the runner starts each run's process so)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue  # the process ended meanwhile, or is not ours to read
    return found


def test_sigterm_stops_serving_at_once_and_marks_the_run_in_progress_interrupted(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    data, runs_dir = tmp_path / "slow.csv", tmp_path / "runs"
    make_frame(n_rows=4000, seed=4).to_csv(data, index=False)
    slow_grid = (
        "grids:\n  random_forest:\n    n_estimators: [1500, 2000]\n    max_depth: [null, 12]\n"
    )
    config = write_config(tmp_path / "configs" / "slow.yaml", "slow", data, runs_dir, slow_grid)
    config.write_text(config.read_text().replace("[logistic_regression]", "[random_forest]"))
    log = tmp_path / "serve.log"
    served = start_serving(prefect_server, config.parent, log)
    try:
        wait_for(lambda: deployment(prefect_server, "slow"), 120, "deployment slow", log)
        flow_run_id = start_flow_run(prefect_server, "slow")
        searching = "Task run 'split"  # the split is done: the family search is under way
        wait_for(lambda: searching in log.read_text(), 180, "the run's model search", log)
        assert list(runs_dir.glob(".*.partial/manifest.json"))  # in progress
        served.send_signal(signal.SIGTERM)
        try:
            code = served.wait(timeout=SERVE_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tabpipe serve still runs {SERVE_STOP_SECONDS} s after SIGTERM")
    finally:
        stop_process(served)
    assert code == 0, log_tail(log)
    assert processes_of_flow_run(flow_run_id) == []
    (run,) = [p for p in runs_dir.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"].startswith("interrupted")
    assert not (run / "metrics.json").exists()
    assert flow_run(prefect_server, flow_run_id)["state_type"] in {"CANCELLED", "CRASHED", "FAILED"}
    paused = deployment(prefect_server, "slow")
    assert paused is not None and paused["paused"] is True
