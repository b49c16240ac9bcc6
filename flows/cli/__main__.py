"""`python -m flows.cli`: the `tabpipe` command."""

from flows.cli.main import run

run()
