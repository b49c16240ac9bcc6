"""The UI artifacts' content, without a server: the Prefect calls are replaced by recorders."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tasks.run import artifacts


def test_search_progress_moves_as_each_family_finishes(monkeypatch: pytest.MonkeyPatch) -> None:
    artifact_id = uuid4()
    created: list[dict[str, Any]] = []
    updates: list[float] = []
    heard: list[tuple[int, int, str]] = []
    monkeypatch.setattr(
        artifacts, "create_progress_artifact", lambda **kw: created.append(kw) or artifact_id
    )
    monkeypatch.setattr(
        artifacts, "update_progress_artifact", lambda aid, progress: updates.append(progress)
    )

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            heard.append((record.done, record.total, record.family))  # type: ignore[attr-defined]

    listener = Listener()
    logger = logging.getLogger(artifacts.PROGRESS_LOGGER)
    logger.addHandler(listener)
    logger.setLevel(logging.INFO)
    try:
        progress = artifacts.SearchProgress(2, "tiny")
        progress.advance("decision_tree")
        progress.advance("logistic_regression")
    finally:
        logger.removeHandler(listener)
    assert created == [
        {
            "progress": 0.0,
            "key": "search-progress",
            "description": "tiny: model families searched (of 2)",
        }
    ]
    assert updates == [50.0, 100.0]
    assert heard == [(0, 2, ""), (1, 2, "decision_tree"), (2, 2, "logistic_regression")]


def test_leaderboard_description_names_the_best_family(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(artifacts, "create_table_artifact", lambda **kw: calls.append(kw))
    rows = [{"family": "random_forest"}, {"family": "logistic_regression"}]
    artifacts.publish_leaderboard(rows, "caravan")
    assert calls[0]["key"] == "leaderboard-caravan"
    assert calls[0]["table"] == rows
    assert calls[0]["description"].startswith("caravan: best random_forest (2 searched)")


def test_report_link_points_at_the_report_file(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(artifacts, "create_link_artifact", lambda **kw: calls.append(kw))
    run_dir = Path("/runs/tiny-1")
    artifacts.publish_report_link((run_dir / "report.html").as_uri(), run_dir)
    assert calls[0]["key"] == "run-report"
    assert calls[0]["link"] == "file:///runs/tiny-1/report.html"
    assert "tiny-1" in calls[0]["link_text"]


@pytest.mark.parametrize(
    ("dataset", "key"),
    [("penguins", "leaderboard-penguins"), ("Penguins_2024.v2", "leaderboard-penguins-2024-v2")],
)
def test_artifact_keys_are_per_dataset_in_prefects_alphabet(dataset: str, key: str) -> None:
    assert artifacts.artifact_key("leaderboard", dataset) == key
    assert re.fullmatch(r"[a-z0-9-]*", artifacts.artifact_key("history", dataset))


def test_stage_events_reach_the_progress_logger() -> None:
    heard: list[str] = []
    listener = logging.Handler()
    listener.emit = lambda record: heard.append(record.stage)  # type: ignore[method-assign]
    logger = logging.getLogger(artifacts.PROGRESS_LOGGER)
    logger.addHandler(listener)
    logger.setLevel(logging.INFO)
    try:
        for stage in ("load", "validate", "evaluate"):
            artifacts.report_stage(stage)
    finally:
        logger.removeHandler(listener)
    assert heard == ["load", "validate", "evaluate"]
