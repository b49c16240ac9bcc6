"""`tabpipe train`: resolve the config before Prefect starts, run the flow with a progress bar,
then print the leaderboard, the test metrics and where the run is."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from flows.cli.console import console

LEADERBOARD_COLUMNS = ("family", "status", "cv_score", "best_params", "fit_seconds")


@contextmanager
def training_progress() -> Iterator[None]:
    """A terminal bar that moves as model families finish."""
    from tasks.run.artifacts import PROGRESS_LOGGER

    progress = Progress(
        TextColumn("[bold]searching model families"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    bar = progress.add_task("", total=None)

    class Advance(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            done, total = getattr(record, "done", 0), getattr(record, "total", None)
            family = getattr(record, "family", "")
            progress.update(bar, completed=done, total=total, description=f"finished {family}")

    handler = Advance()
    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with progress:
            yield
    finally:
        logger.removeHandler(handler)


def print_run_result(run_dir: Path) -> None:
    """Leaderboard, the best model's test metrics, and where the run is."""
    from tasks.run.report import (
        diagnostic_line,
        drift_summary,
        flagged_diagnostics,
        format_value,
        leakage_line,
        metric_rows,
        threshold_text,
    )

    metrics = json.loads((run_dir / "metrics.json").read_text())
    leaderboard = json.loads((run_dir / "leaderboard.json").read_text())
    table = Table(
        title=f"Leaderboard ({metrics['selection_metric']}, {metrics['cv_folds']}-fold CV)"
    )
    for column in LEADERBOARD_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in leaderboard:
        table.add_row(*(format_value(row[c]) for c in LEADERBOARD_COLUMNS))
    console.print(table)
    console.print(f"Selection metric: {metrics['selection_metric']}: {metrics['selection_reason']}")
    rows = metric_rows(metrics["test_metrics"])
    scores = Table(title=f"Best model {metrics['best_model']['family']}: test metrics")
    for column in rows[0]:
        scores.add_column(column)
    for row in rows:
        scores.add_row(*(format_value(v) for v in row.values()))
    console.print(scores)
    if metrics["task"] != "regression":
        console.print(f"Decision threshold: {threshold_text(metrics['test_metrics'])}")
    console.print(f"Leakage audit: {leakage_line(metrics)}")
    champion_file = run_dir / "champion.json"
    decision = json.loads(champion_file.read_text()) if champion_file.is_file() else None
    if decision:
        verdict = "this run" if decision.get("becomes_champion") else "unchanged"
        console.print(f"Champion of '{metrics['dataset']}': {verdict}: {decision['reason']}")
    print_run_notes(run_dir, metrics)
    drift_file = run_dir / "drift.json"
    if drift_file.is_file():
        console.print(Text(drift_summary(json.loads(drift_file.read_text())), style="yellow"))
    for record in flagged_diagnostics(metrics):
        # Text, not markup: column names in a message are data (a '[b]' must print as is).
        colour = "red" if record["severity"] == "fail" else "yellow"
        console.print(Text(diagnostic_line(record), style=colour), soft_wrap=True)
    console.print(f"Run directory: {run_dir}")


def print_run_notes(run_dir: Path, metrics: dict[str, Any]) -> None:
    """What tabpipe did about the data on its own: encoding, dropped rows and columns, folds."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    notes = [*manifest.get("data", {}).get("notes", []), metrics.get("cv_note")]
    for note in filter(None, notes):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)


def command_train(args: argparse.Namespace) -> int:
    from prefect import tags

    from flows.deployments import api_shared_with_workers, train_flow
    from flows.runtime import TrainParameters, resolve_config
    from tasks.checks import check_data_file

    params = TrainParameters(
        config=str(args.config) if args.config else None,
        data=str(args.data) if args.data else None,
        target=args.target,
        overrides=args.set or [],
    )
    config = resolve_config(params)  # config errors surface before Prefect starts
    check_data_file(config)
    dataset = config.dataset_name
    train = train_flow(args.dask_address)
    with (
        tags("tabpipe", f"dataset:{dataset}"),
        api_shared_with_workers(args.dask_address),
        training_progress(),
    ):
        run_dir = Path(train(params, resolved=config))
    print_run_result(run_dir)
    return 0


def add_train_parser(commands: Any) -> None:
    parser = commands.add_parser("train", help="Validate, search models, evaluate, write a run.")
    parser.add_argument("config", nargs="?", type=Path, help="YAML config (configs/NAME.yaml).")
    parser.add_argument("--data", type=Path, help="CSV or Parquet file (without a config).")
    parser.add_argument("--target", help="Column to predict (with --data).")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="Override a config field, e.g. --set split.cv_folds=3.",
    )
    parser.add_argument(
        "--dask-address",
        metavar="tcp://HOST:PORT",
        help="Run the model-family searches on an existing Dask cluster (its scheduler).",
    )
    parser.set_defaults(handler=command_train)
