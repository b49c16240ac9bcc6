"""The `tabpipe` command line. Errors a user can cause print one sentence and exit non-zero;
tracebacks are for bugs and for --debug."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from collections.abc import Callable
from importlib import metadata
from typing import NoReturn

from rich.markup import escape

from flows.cli.console import error_console, print_failure_cases
from flows.cli.contracts import add_init_parser, add_validate_parser
from flows.cli.metrics import add_metrics_parser
from flows.cli.replay import add_replay_parser
from flows.cli.segment import add_segment_parser
from flows.cli.serve import add_serve_parser
from flows.cli.server import add_server_parser
from flows.cli.serving import add_serving_parsers
from flows.cli.train import add_train_parser
from flows.server import apply_prefect_defaults
from tasks.errors import USER_ERRORS

USER_ERROR_EXIT = 2
SIGINT_EXIT = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabpipe", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="Show tracebacks and Prefect logs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {tabpipe_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_parser(commands)
    add_replay_parser(commands)
    add_metrics_parser(commands)
    add_segment_parser(commands)
    add_serving_parsers(commands)
    add_serve_parser(commands)
    add_server_parser(commands)
    add_init_parser(commands)
    add_validate_parser(commands)
    return parser


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand; a user error becomes one sentence on stderr and exit code 2."""
    try:
        return handler(args)
    except KeyboardInterrupt:  # Ctrl-C before a run started (a run's own stop exits by itself)
        if args.debug:
            raise
        error_console.print("Stopped by SIGINT before anything started.", highlight=False)
        return SIGINT_EXIT
    except USER_ERRORS as error:
        if args.debug:
            raise
        print_failure_cases(error)
        # The message quotes the user's values (columns, --set text): data, never rich markup.
        error_console.print(
            f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        return USER_ERROR_EXIT


def tabpipe_version() -> str:
    try:
        return metadata.version("tabpipe")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Parse, then run the command; each command connects to Prefect itself, after the checks
    a user's mistake fails (flows/cli/console.py prefect_session)."""
    args = build_parser().parse_args(argv)
    apply_prefect_defaults()
    return run_command(args.handler, args)


def exit_without_teardown(code: int) -> NoReturn:
    """Exit as Python does, minus its teardown of every loaded module (about a second after a
    training run: scikit-learn, pandas, Prefect, matplotlib), which no user waits for. What an
    exit must do runs first: other threads are joined and the atexit hooks run (joblib stops
    its CV workers and deletes its temporary folders, Prefect stops a temporary server and
    sends what it queued, logging flushes), then the output is flushed."""
    join_threads = getattr(threading, "_shutdown", None)  # what Python itself calls at exit
    if join_threads is None:  # another Python: its own exit, teardown included
        sys.exit(code)
    join_threads()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run() -> NoReturn:
    """The `tabpipe` command. An exception leaves the usual way (its traceback printed)."""
    exit_without_teardown(main())


if __name__ == "__main__":
    run()
