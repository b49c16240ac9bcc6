"""`tabpipe serve`: one Prefect deployment per config in configs/ (`train/<dataset>`), each on the
schedule its config declares, served by this process until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_CONFIGS_DIR = Path("configs")


def command_serve(args: argparse.Namespace) -> int:
    from flows.cli.console import console, prefect_session
    from flows.deployments import config_files

    files = config_files(args.configs_dir)
    with prefect_session(args.debug, temporary_ok=False) as connection:
        from flows.deployments import serve_deployments

        # Say what is deployed: a config someone added to the folder is served too.
        names = ", ".join(str(path) for path in files)
        console.print(f"Serving {len(files)} config(s) from {args.configs_dir}: {names}")
        console.print(f"Prefect UI: {connection.ui_url}", highlight=False)
        serve_deployments(args.configs_dir, limit=args.limit, poll_seconds=args.poll_seconds)
    return 0


def add_serve_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "serve", help="Serve one deployment per config (train/<dataset>) on its schedule."
    )
    parser.add_argument(
        "--configs-dir",
        type=Path,
        default=DEFAULT_CONFIGS_DIR,
        help="Folder of YAML configs (default: configs).",
    )
    parser.add_argument(
        "--limit", type=int, default=1, help="Flow runs at once (default 1: a run uses every core)."
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="Seconds between checks for scheduled runs (Prefect's default: 10).",
    )
    parser.set_defaults(handler=command_serve)
