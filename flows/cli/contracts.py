"""`tabpipe init` (a starter config and schema for a new file) and `tabpipe validate` (check a
file against its schema, no training). Neither starts Prefect."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()


def absolute_schema_ref(reference: str | None) -> str | None:
    """A schema file typed on the command line is relative to where the user stands."""
    if reference is not None and reference.lower().endswith((".yaml", ".yml")):
        return str(Path(reference).resolve())
    if reference is None or ".py:" not in reference:
        return reference
    path, _, attribute = reference.rpartition(":")
    return f"{Path(path).resolve()}:{attribute}"


def print_notes(notes: list[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)


def command_init(args: argparse.Namespace) -> int:
    from tasks.data.contracts import write_starter_files

    files = write_starter_files(
        args.file, args.target, args.configs_dir, args.schemas_dir, args.name, args.force
    )
    print_notes(files.notes)
    for line in (
        f"Wrote {files.schema} (pandera YAML schema, inferred: tighten it).",
        f"Wrote {files.config} (schema: {files.schema_ref}).",
        f"Next: tabpipe validate {files.config}, then tabpipe train {files.config}",
    ):
        console.print(line, highlight=False, soft_wrap=True)
    return 0


def add_init_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "init", help="Write a starter config and pandera schema inferred from a data file."
    )
    parser.add_argument("file", type=Path, help="CSV or Parquet file.")
    parser.add_argument("--target", required=True, help="Column to predict.")
    parser.add_argument("--name", help="Dataset name (default: from the file name).")
    parser.add_argument("--configs-dir", type=Path, default=Path("configs"))
    parser.add_argument("--schemas-dir", type=Path, default=Path("schemas"))
    parser.add_argument("--force", action="store_true", help="Replace existing files.")
    parser.set_defaults(handler=command_init)


def command_validate(args: argparse.Namespace) -> int:
    from tasks.checks import load_config
    from tasks.data.contracts import validate_config_data, validate_file
    from tasks.errors import ConfigError

    schema_ref = absolute_schema_ref(args.schema)
    if args.config is not None:
        config = load_config(args.config, data=args.data)
        if schema_ref:  # typed at the keyboard: trusted like a config file, unlike --set
            config = config.model_copy(update={"schema_ref": schema_ref})
        report = validate_config_data(config)
    elif args.data is not None:
        report = validate_file(args.data, schema_ref)
    else:
        raise ConfigError("validate needs a CONFIG, or --data FILE (with --schema module:Class).")
    print_notes(report.notes)
    console.print(
        f"Data '{report.source}' is valid against schema '{report.schema_name}' "
        f"({report.n_rows} rows, {report.n_columns} columns).",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def add_validate_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "validate", help="Check a data file against its schema without training (exit 2 if not)."
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML config (configs/NAME.yaml).")
    parser.add_argument("--data", type=Path, help="Data file (instead of the config's).")
    parser.add_argument(
        "--schema",
        help="'module:Class' or 'path/file.py:Class' (default: the config's, else "
        "inferred from the file).",
    )
    parser.set_defaults(handler=command_validate)
