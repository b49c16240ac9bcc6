"""`tabpipe serve`: one Prefect deployment per config in configs/ (`train/<dataset>`), each on the
schedule its config declares, served by this process until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_CONFIGS_DIR = Path("configs")


def command_serve(args: argparse.Namespace) -> int:
    from flows.deployments import serve_deployments

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
