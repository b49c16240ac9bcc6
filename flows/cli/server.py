"""`tabpipe server start|stop|status`: the project's Prefect server, in the background on
127.0.0.1 with the project's Prefect home (.prefect/), so every run shows in one UI."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.console import console
from flows.server import DEFAULT_PORT, prefect_home, running_server, start_server, stop_server


def command_server(args: argparse.Namespace) -> int:
    home = prefect_home()
    if args.action == "start":
        state, started = start_server(home, args.port)
        verb = "Started" if started else "Already running:"
        console.print(f"{verb} Prefect server (PID {state.pid}, home {home}).")
        console.print(f"UI: {state.ui_url}  (every tabpipe command in this project reports here)")
        return 0
    if args.action == "stop":
        stopped = stop_server(home)
        console.print(
            f"Stopped the Prefect server (PID {stopped.pid})."
            if stopped
            else f"No Prefect server was running for {home}."
        )
        return 0
    running = running_server(home)
    if running is None:
        console.print(f"No Prefect server is running for {home} (start: `tabpipe server start`).")
        return 1
    console.print(f"Running: PID {running.pid}, UI {running.ui_url}, API {running.api_url}")
    return 0


def add_server_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "server", help="Start, stop or check the project's Prefect server (UI of every run)."
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT})."
    )
    parser.set_defaults(handler=command_server)
