"""The prediction service, over real HTTP: a uvicorn subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flows.cli.main import main
from tasks.run.model_io import load_checked_model
from tasks.serving.answers import predict_with_card
from tests.conftest import PROJECT_ROOT, free_port, stop_process
from tests.trained_run import DATASET, TrainedRun

READY_WAIT_SECONDS = 90


def wait_until_healthy(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tabpipe api exited with {process.returncode}")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("tabpipe api did not become healthy")


@pytest.fixture(scope="module")
def api(
    trained_run: TrainedRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """`tabpipe api` serving the champion; stopped by its own PID."""
    port = free_port()
    log = (tmp_path_factory.mktemp("api") / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "api", "--model", f"champion:{DATASET}",
         "--runs-dir", str(trained_run.runs_dir), "--port", str(port)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until_healthy(client, process)
            yield client
    finally:
        stop_process(process)
        log.close()


def error_fields(response: httpx.Response) -> set[str]:
    return {str(item["loc"][-1]) for item in response.json()["detail"]}


@pytest.mark.e2e
def test_health_and_model_card(api: httpx.Client, trained_run: TrainedRun) -> None:
    assert api.get("/health").json() == {"status": "ok", "run_id": trained_run.run_dir.name}
    card = json.loads(trained_run.model_path.with_suffix(".json").read_text())
    assert api.get("/model").json() == card


@pytest.mark.e2e
def test_predict_scores_records_like_the_saved_model(
    api: httpx.Client, trained_run: TrainedRun
) -> None:
    records = [
        {"x1": 2.5, "x2": -1.0, "colour": "red"},
        {"x1": -1.0, "x2": 0.5, "colour": None},
        {"x1": None, "x2": 0.0, "colour": "blue"},
    ]
    response = api.post("/predict", json=records)
    assert response.status_code == 200
    body = response.json()
    assert body["run_id"] == trained_run.run_dir.name
    model, card = load_checked_model(trained_run.model_path, trained_run.runs_dir)
    expected = predict_with_card(
        model, card, pd.DataFrame(records).astype({"x1": float, "colour": "category"})
    )
    for got, (_, want) in zip(body["predictions"], expected.iterrows(), strict=True):
        assert got["y_pred"] == want["y_pred"]
        assert got["proba_yes"] == pytest.approx(want["yes"])
        assert got["proba_no"] == pytest.approx(want["no"])
    assert sum(row["rows"] for row in body["class_balance"]) == 3


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("record", "named"),
    [
        ({"x1": 1.0, "colour": "red"}, {"x2"}),  # missing field
        ({"x1": "tall", "x2": 0.1, "colour": "red"}, {"x1"}),  # wrong type
        ({"x1": 1.0, "x2": 0.1, "colour": 7}, {"colour"}),  # a number where text belongs
        ({"x1": 1.0, "x2": 0.1, "colour": "red", "height": 3}, {"height"}),  # unknown field
        ({"x1": 1.0, "x2": 0.1, "colour": "purple"}, {"colour"}),  # not a training category
        ({"x1": 1e6, "x2": 0.1, "colour": "red"}, {"x1"}),  # far outside the training range
    ],
)
def test_bad_records_get_422_naming_the_field(
    api: httpx.Client, record: dict[str, object], named: set[str]
) -> None:
    response = api.post("/predict", json=[record])
    assert response.status_code == 422
    assert error_fields(response) == named


@pytest.mark.e2e
def test_an_empty_or_non_list_body_is_422(api: httpx.Client) -> None:
    assert api.post("/predict", json=[]).status_code == 422
    assert api.post("/predict", json={"x1": 1.0}).status_code == 422


@pytest.mark.e2e
def test_reports_and_plots_are_served_but_models_are_not(
    api: httpx.Client, trained_run: TrainedRun
) -> None:
    run_id = trained_run.run_dir.name
    report = api.get(f"/runs/{run_id}/report.html")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert 'id="best-model"' in report.text
    plot = api.get(f"/runs/{run_id}/plots/roc.png")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert api.get(f"/runs/{run_id}/models/best.skops").status_code == 404
    assert api.get(f"/runs/{run_id}/models/best.json").status_code == 404
    assert api.get("/runs/.registry.lock").status_code == 404
    assert f"/runs/{run_id}/report.html" in api.get("/").text


def test_api_refuses_an_untrusted_model_before_serving(
    run_copy: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(run_copy.run_dir, outside)
    args = ["api", "--model", str(outside), "--runs-dir", str(run_copy.runs_dir), "--port", "1"]
    assert main(args) == 2
    assert "--trust" in capsys.readouterr().err


def test_docs_work_offline_from_packaged_assets(api: httpx.Client, tmp_path: Path) -> None:
    """/docs names only this server's own assets, and a real browser renders the operations."""
    page = api.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page.text):
        assert api.get(asset).status_code == 200
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (`make browser` installs it)")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", f"--user-data-dir={tmp_path}",
         "--virtual-time-budget=10000", "--dump-dom", f"{api.base_url}/docs"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "/predict" in dom and "opblock" in dom  # Swagger UI drew the operations
