"""The prediction API on a shared network (FastAPI's TestClient, the app in-process): a bearer
token, a body limit, short error echoes, escaped pages, integers not truncated."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tasks.serving.api import build_app
from tasks.serving.predict import RunModel, load_run_model
from tests.trained_run import TrainedRun

TOKEN = "s3cret-token"


def record(**changes: Any) -> dict[str, Any]:
    return {"x1": 0.5, "x2": -1.0, "colour": "red", **changes}


@pytest.fixture(scope="module")
def run_model(trained_run: TrainedRun) -> RunModel:
    return load_run_model(str(trained_run.run_dir), trained_run.runs_dir)


@pytest.fixture
def client(run_model: RunModel, trained_run: TrainedRun) -> TestClient:
    return TestClient(build_app(run_model, trained_run.runs_dir, api_token=TOKEN))


def test_every_route_but_health_needs_the_token(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    for path in ("/", "/model", "/docs", "/openapi.json"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/predict", json=[record()]).status_code == 401
    wrong = {"Authorization": "Bearer not-it"}
    assert client.post("/predict", json=[record()], headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/predict", json=[record()], headers=right).status_code == 200
    assert client.get("/model", headers=right).status_code == 200


def test_without_a_token_the_api_is_open_as_before(
    run_model: RunModel, trained_run: TrainedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABPIPE_API_TOKEN", raising=False)
    open_client = TestClient(build_app(run_model, trained_run.runs_dir))
    assert open_client.post("/predict", json=[record()]).status_code == 200
    monkeypatch.setenv("TABPIPE_API_TOKEN", TOKEN)
    from_env = TestClient(build_app(run_model, trained_run.runs_dir))
    assert from_env.post("/predict", json=[record()]).status_code == 401


def test_a_large_body_is_refused_with_413_and_never_echoed(
    run_model: RunModel, trained_run: TrainedRun
) -> None:
    small = TestClient(build_app(run_model, trained_run.runs_dir, api_token="", max_bytes=4096))
    big = [record(colour="x" * 10_000)]
    response = small.post("/predict", json=big)
    assert response.status_code == 413
    assert len(response.content) < 300

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield b"["
        for _ in range(100):
            yield b'{"x1": 1.0, "x2": 1.0, "colour": "' + b"y" * 100 + b'"},'
        yield b"{}]"

    chunked = small.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_validation_errors_echo_at_most_200_characters(
    run_model: RunModel, trained_run: TrainedRun
) -> None:
    app = build_app(run_model, trained_run.runs_dir, api_token="")
    client = TestClient(app)
    long_text = "z" * 1_000_000
    response = client.post("/predict", json=[record(x1=long_text)])
    assert response.status_code == 422
    assert len(response.content) < 1000
    detail = response.json()["detail"][0]
    assert detail["input"].startswith("z" * 200) and "(1000000 characters)" in detail["input"]
    unknown = client.post("/predict", json=[record(**{"k" * 5000: 1})])
    assert unknown.status_code == 422 and len(unknown.content) < 2000
    schema_failure = client.post("/predict", json=[record(colour="purple" * 100)])
    assert schema_failure.status_code == 422
    assert len(schema_failure.json()["detail"][0]["input"]) < 260


def test_the_index_page_escapes_run_names(run_copy: TrainedRun, run_model: RunModel) -> None:
    hostile = run_copy.runs_dir / "q<img src=x onerror=alert(1)>-20261125T000000-abcdef"
    shutil.copytree(run_copy.run_dir, hostile)
    page = TestClient(build_app(run_model, run_copy.runs_dir, api_token="")).get("/").text
    assert "<img" not in page
    assert "q&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_fraction_for_an_integer_column_is_422_not_truncated(
    run_model: RunModel, trained_run: TrainedRun
) -> None:
    as_integer = RunModel(
        run_model.run_dir,
        run_model.model,
        {**run_model.card, "input_columns": {**run_model.card["input_columns"], "x1": "int64"}},
        run_model.schema,
        run_model.target,
    )
    client = TestClient(build_app(as_integer, trained_run.runs_dir, api_token=""))
    refused = client.post("/predict", json=[record(x1=2009.7)])
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", 0, "x1"]
    assert client.post("/predict", json=[record(x1=1)]).status_code == 200


def test_build_app_keeps_no_token_when_given_an_empty_one(
    run_model: RunModel, trained_run: TrainedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABPIPE_API_TOKEN", TOKEN)
    explicit_none = TestClient(build_app(run_model, trained_run.runs_dir, api_token=""))
    assert explicit_none.get("/model").status_code == 200


def test_report_files_are_still_served_with_the_token(
    client: TestClient, trained_run: TrainedRun
) -> None:
    path = f"/runs/{trained_run.run_dir.name}/report.html"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert Path(trained_run.run_dir / "report.html").is_file()
