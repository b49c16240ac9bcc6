"""The `tabpipe` command line. Errors a user can cause print one sentence and exit non-zero;
tracebacks are for bugs and for --debug."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from rich.markup import escape

from flows.cli.console import error_console, print_failure_cases
from flows.cli.contracts import add_init_parser, add_validate_parser
from flows.cli.metrics import add_metrics_parser
from flows.cli.replay import add_replay_parser
from flows.cli.segment import add_segment_parser
from flows.cli.serve import add_serve_parser
from flows.cli.serving import add_serving_parsers
from flows.cli.train import add_train_parser
from tasks.errors import USER_ERRORS

USER_ERROR_EXIT = 2
# Quiet, offline Prefect defaults (docs/prefect.md); the user's environment wins.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
}


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
    except USER_ERRORS as error:
        if args.debug:
            raise
        print_failure_cases(error)
        # The message names the user's columns and files: data, never markup.
        error_console.print(
            f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        return USER_ERROR_EXIT


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_prefect_defaults()
    quiet_prefect_console(args.debug)
    return run_command(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
