"""The `tabpipe` command line. Errors a user can cause print one sentence and exit non-zero;
tracebacks are for bugs and for --debug."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.contracts import add_init_parser, add_validate_parser
from flows.metrics_cli import add_metrics_parser
from flows.replay import add_replay_parser
from flows.segment_cli import add_segment_parser
from flows.serve import add_serve_parser
from flows.serving import add_serving_parsers

USER_ERROR_EXIT = 2
MAX_FAILURES_SHOWN = 20
LEADERBOARD_COLUMNS = ("family", "status", "cv_score", "best_params", "fit_seconds")
# Quiet, offline Prefect defaults (see ../shared/STACK.md); the user's environment wins.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
}

console = Console()
error_console = Console(stderr=True)


def apply_prefect_defaults() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


class DropTracebacks(logging.Filter):
    """Keep Prefect's console quiet about user errors: the CLI says them in one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def quiet_prefect_console(debug: bool) -> None:
    """Terminal shows warnings only (the UI still gets every log); --debug shows all."""
    from prefect.logging.configuration import setup_logging

    setup_logging()
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if debug else logging.WARNING)
        if not debug:
            handler.addFilter(DropTracebacks())


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean the user's input is wrong, not that tabpipe has a bug."""
    from tasks.config import ConfigError
    from tasks.data import DataError
    from tasks.model_io import ModelIntegrityError

    return ConfigError, DataError, ModelIntegrityError


@contextmanager
def training_progress() -> Iterator[None]:
    """A terminal bar that moves as model families finish."""
    from tasks.artifacts import add_progress_listener, remove_progress_listener

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

    def advance(done: int, total: int, family: str) -> None:
        progress.update(bar, completed=done, total=total, description=f"finished {family}")

    add_progress_listener(advance)
    try:
        with progress:
            yield
    finally:
        remove_progress_listener(advance)


def print_run_result(run_dir: Path) -> None:
    """Leaderboard, the best model's test metrics, and where the run is."""
    from tasks.report import format_value, leakage_line, metric_rows, threshold_text

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
    console.print(f"Run directory: {run_dir}")


def print_run_notes(run_dir: Path, metrics: dict[str, Any]) -> None:
    """What tabpipe did about the data on its own: encoding, dropped rows and columns, folds."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    notes = [*manifest.get("data", {}).get("notes", []), metrics.get("cv_note")]
    for note in filter(None, notes):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)


def print_failure_cases(error: BaseException) -> None:
    cases = getattr(error, "failure_cases", None)
    if cases is None or cases.empty:
        return
    shown = (
        f"first {MAX_FAILURES_SHOWN} of {len(cases)}"
        if len(cases) > MAX_FAILURES_SHOWN
        else len(cases)
    )
    table = Table(title=f"Validation failures ({shown})")
    for column in cases.columns:
        table.add_column(str(column))
    for row in cases.head(MAX_FAILURES_SHOWN).itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    error_console.print(table)


def command_train(args: argparse.Namespace) -> int:
    from prefect import tags

    from flows.cluster import api_shared_with_workers, train_flow
    from flows.train import TrainParameters, resolve_config
    from tasks.config_checks import check_data_file

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
        run_dir = Path(train(params))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabpipe", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="Show tracebacks and Prefect logs.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_parser(commands)
    add_replay_parser(commands)
    add_metrics_parser(commands)
    add_segment_parser(commands)
    add_serving_parsers(commands)
    add_serve_parser(commands)
    add_init_parser(commands)
    add_validate_parser(commands)
    return parser


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand; a user error becomes one sentence on stderr and exit code 2."""
    try:
        return handler(args)
    except user_errors() as error:
        if args.debug:
            raise
        print_failure_cases(error)
        error_console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return USER_ERROR_EXIT


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_prefect_defaults()
    quiet_prefect_console(args.debug)
    return run_command(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
