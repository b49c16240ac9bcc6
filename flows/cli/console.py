"""The one terminal of the `tabpipe` command: its consoles and the tables several commands share."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

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
