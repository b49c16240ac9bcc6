"""`tabpipe replay RUN_DIR`: train again from a run's resolved config and report any difference."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.console import console

MAX_REPORTED_DIFFERENCES = 10


def command_replay(args: argparse.Namespace) -> int:
    from flows.cli.console import prefect_session

    with prefect_session(args.debug):
        from flows.replay import replay

        report = replay(args.run_dir)
    console.print(f"Replayed {report.original.name} as {report.replayed}")
    for name in report.identical_files:
        console.print(f"  {name}: byte-identical")
    for difference in report.differences[:MAX_REPORTED_DIFFERENCES]:
        console.print(f"  [red]differs[/red] {difference}")
    return 0 if report.identical else 1


def add_replay_parser(commands: Any) -> None:
    parser = commands.add_parser("replay", help="Re-run a run from its manifest and compare.")
    parser.add_argument("run_dir", type=Path, help="A complete run directory under runs/.")
    parser.set_defaults(handler=command_replay)
