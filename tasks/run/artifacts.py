"""Prefect UI artifacts with stable keys, so the Artifacts page shows their history across runs."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

LEADERBOARD_KEY = "leaderboard"
RUN_SUMMARY_KEY = "run-summary"
VALIDATION_FAILURES_KEY = "validation-failures"
SEARCH_PROGRESS_KEY = "search-progress"
REPORT_LINK_KEY = "run-report"
# Prefect's UI shows up to this many failure rows comfortably; the CSV holds them all.
MAX_FAILURE_ROWS = 200

HISTORY_KEY = "history"
# A terminal (the CLI's progress bar) follows a run by attaching a handler to this logger.
PROGRESS_LOGGER = "tabpipe.progress"
STAGES = ("load", "validate", "profile", "search", "evaluate", "write")


def artifact_key(prefix: str, dataset: str) -> str:
    """`<prefix>-<dataset>` in Prefect's key alphabet (^[a-z0-9-]*$), so each key's history in
    the UI is one dataset's history."""
    slug = re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-") or "dataset"
    return f"{prefix}-{slug}"


def report_stage(stage: str) -> None:
    """Tell terminal listeners which stage the run is in (the search reports its own counts)."""
    logging.getLogger(PROGRESS_LOGGER).info("stage %s", stage, extra={"stage": stage})


class SearchProgress:
    """A progress artifact in the UI plus any terminal listeners, moved as families finish."""

    def __init__(self, total: int, dataset: str, deadline: float | None = None) -> None:
        self.total = total
        self.done = 0
        self.deadline = deadline  # epoch seconds: the time budget's end, for a countdown
        logging.getLogger(PROGRESS_LOGGER).info(
            "searching",
            extra={
                "stage": "search",
                "done": 0,
                "total": total,
                "family": "",
                "deadline": deadline,
            },
        )
        artifact_id = create_progress_artifact(
            progress=0.0,
            key=SEARCH_PROGRESS_KEY,
            description=f"{dataset}: model families searched (of {total})",
        )
        self.artifact_id: UUID | None = artifact_id if isinstance(artifact_id, UUID) else None

    def advance(self, family: str) -> None:
        self.done += 1
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, progress=100.0 * self.done / self.total)
        logging.getLogger(PROGRESS_LOGGER).info(
            "finished %s",
            family,
            extra={
                "stage": "search",
                "done": self.done,
                "total": self.total,
                "family": family,
                "deadline": self.deadline,
            },
        )


def publish_leaderboard(rows: list[dict[str, Any]], dataset: str) -> None:
    """Rows best first; the description names the best family, so the run's Artifacts tab does."""
    best = f"best {rows[0]['family']} " if rows else ""
    create_table_artifact(
        key=artifact_key(LEADERBOARD_KEY, dataset),
        table=rows,
        description=f"{dataset}: {best}({len(rows)} searched), by cross-validated score",
    )


def publish_run_summary(markdown: str, dataset: str) -> None:
    create_markdown_artifact(
        key=artifact_key(RUN_SUMMARY_KEY, dataset),
        markdown=markdown,
        description=f"{dataset}: run summary",
    )


def publish_history(rows: list[dict[str, Any]], dataset: str) -> None:
    """The dataset's runs, newest first (run, date, best family, test metric, champion): one
    table per run under one key, so the latest version is the whole history."""
    create_table_artifact(
        key=artifact_key(HISTORY_KEY, dataset),
        table=rows,
        description=f"{dataset}: every completed run, newest first ({len(rows)})",
    )


def publish_report_link(report_url: str, run_dir: Path) -> None:
    # A file:// link: browsers open it only when pasted into the address bar on that machine.
    create_link_artifact(
        key=REPORT_LINK_KEY,
        link=report_url,
        link_text=f"report of {run_dir.name}",
        description=f"{run_dir.name}: HTML report (a file on the machine that ran the flow)",
    )


def drift_key(dataset: str) -> str:
    """`drift-<dataset>`, spelled as Prefect keys must be (lowercase letters, digits, '-')."""
    slug = re.sub(r"[^a-z0-9-]+", "-", dataset.lower()).strip("-")
    return f"drift-{slug or 'dataset'}"


def publish_drift(rows: list[dict[str, Any]], summary: str, dataset: str) -> None:
    """The drift table, drifted columns first (the sentence says what it was compared with)."""
    create_table_artifact(key=drift_key(dataset), table=rows, description=f"{dataset}: {summary}")


def publish_validation_failures(failure_cases: pd.DataFrame, source: str) -> None:
    shown = failure_cases.head(MAX_FAILURE_ROWS).astype(str)
    create_table_artifact(
        key=VALIDATION_FAILURES_KEY,
        table=[{str(k): v for k, v in row.items()} for row in shown.to_dict(orient="records")],
        description=f"{source}: {len(failure_cases)} validation failure(s)",
    )


def publish_segment_leaderboard(rows: list[dict[str, Any]], dataset: str) -> None:
    """The `leaderboard-<dataset>` key training uses, so the run's artifacts show it."""
    create_table_artifact(
        key=artifact_key(LEADERBOARD_KEY, dataset),
        table=rows,
        description=f"{dataset}: silhouette per k (segmentation)",
    )
