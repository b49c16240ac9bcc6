"""The one terminal of the `tabpipe` command: its consoles and the tables several commands share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from flows.server import Connection

MAX_FAILURES_SHOWN = 20

console = Console()
# No emoji codes: a column or file name like ':x:' is shown as written.
error_console = Console(stderr=True, emoji=False)


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
        table.add_column(Text(str(column)))
    for row in cases.head(MAX_FAILURES_SHOWN).itertuples(index=False):
        table.add_row(*(Text(str(v)) for v in row))  # values are data, never markup
    error_console.print(table)


class DropTracebacks(logging.Filter):
    """Keep Prefect's console quiet about user errors: the CLI says them in one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def quiet_prefect_console(debug: bool) -> None:
    """Terminal shows warnings only (the UI still gets every log); --debug shows all."""
    import prefect.main  # noqa: F401  # its import sets Prefect's logging up (once: again was 0.05 s)

    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if debug else logging.WARNING)
        if not debug:
            handler.addFilter(DropTracebacks())


@contextmanager
def prefect_session(
    debug: bool, *, temporary_ok: bool = True, preload: Callable[[], object] = lambda: None
) -> Iterator[Connection]:
    """Connect to the project's Prefect server (or a temporary one), then import Prefect with a
    quiet console and `preload` the command's modules (while a temporary server boots).
    Commands enter it only after their own checks, so a user's mistake is answered before any
    server starts."""
    from flows.server import heartbeats_left_to_end_alone, prefect_connection

    def warm_up() -> None:
        quiet_prefect_console(debug)
        preload()

    with (
        prefect_connection(temporary_ok=temporary_ok, then=warm_up) as connection,
        heartbeats_left_to_end_alone(),
    ):
        try:
            yield connection
        finally:
            send_pending_logs()


def send_pending_logs(timeout: float = 10.0) -> None:
    """Logs and events still queued reach the server before a temporary one stops (else Prefect
    prints "Error logging to API" at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout, at_exit=False)
