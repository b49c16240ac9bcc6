"""`tabpipe predict`, `tabpipe runs`, `tabpipe promote` and `tabpipe api`: using saved models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

DEFAULT_RUNS_DIR = Path("runs")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

console = Console()


def print_class_balance(balance: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("class", "rows", "share"):
        table.add_column(column)
    for row in balance:
        table.add_row(Text(row["class"]), str(row["rows"]), f"{row['share']:.1%}")
    console.print(table)


def print_value_summary(summary: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for row in summary:
        table.add_row(row["statistic"], f"{row['value']:.6g}")
    console.print(table)


def command_predict(args: argparse.Namespace) -> int:
    from flows.cli.console import prefect_session
    from tasks.serving.predict import check_output_path, load_run_model

    # Refusals (model, output path) surface before Prefect starts.
    run_model = load_run_model(args.model, args.runs_dir, args.trust, args.allow_failed)
    check_output_path(args.out, data=args.data, runs_dir=args.runs_dir, run_dir=run_model.run_dir)
    with prefect_session(args.debug):
        return predict_in_flow(args)


def predict_in_flow(args: argparse.Namespace) -> int:
    from flows.predict import PredictParameters, batch_predict

    params = PredictParameters(
        model=args.model,
        data=str(args.data),
        out=str(args.out),
        runs_dir=str(args.runs_dir),
        trust=args.trust,
        allow_failed=args.allow_failed,
    )
    summary = batch_predict(params)
    if "class_balance" in summary:
        print_class_balance(summary["class_balance"], "Predicted classes")
    else:
        print_value_summary(summary["value_summary"], "Predicted values")
    console.print(f"{summary['rows']} rows scored by run {summary['run_id']}.")
    console.print(f"Predictions: {summary['out']}")
    return 0


def command_check_runs(args: argparse.Namespace) -> int:
    """`tabpipe runs --check [--repair]`: 0 when registry and runs agree (or were repaired)."""
    from tasks.serving.registry_check import check_registry, repair_registry

    findings = repair_registry(args.runs_dir) if args.repair else check_registry(args.runs_dir)
    if not findings:
        console.print(f"The champion registry and the runs in '{args.runs_dir}' agree.")
        return 0
    for finding in findings:
        done = "repaired: " if args.repair else "repair: "
        console.print(
            f"- {finding.subject}: {finding.problem} {done}{finding.repair}",
            highlight=False,
            soft_wrap=True,
        )
    if args.repair:
        return 0
    console.print("Run `tabpipe runs --check --repair` to apply the repairs.")
    return 1


def command_runs(args: argparse.Namespace) -> int:
    from tasks.run.report import format_value
    from tasks.serving.registry import list_runs

    if args.check or args.repair:
        return command_check_runs(args)
    rows = list_runs(args.runs_dir)
    if args.dataset:
        rows = [row for row in rows if row["dataset"] == args.dataset]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        scope = f" of dataset '{args.dataset}'" if args.dataset else ""
        console.print(f"No runs{scope} in '{args.runs_dir}'.")
        return 0
    table = Table(title=f"Runs in {args.runs_dir} (newest first; * = champion)")
    table.add_column("")
    table.add_column("run_id", no_wrap=True)  # people copy it into `tabpipe promote`
    table.add_column("status", no_wrap=True)
    for column in ("best model", "test score", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            "*" if row["champion"] else "",
            row["run_id"],
            row["status"],
            format_value(row["best_model"]),
            f"{row['metric']} {format_value(row['test_score'])}" if row["metric"] else "",
            (row["error"] or row["champion_note"] or "")[:120],
        )
    console.print(table)
    return 0


def command_promote(args: argparse.Namespace) -> int:
    from tasks.serving.champion import promote_run
    from tasks.serving.registry import resolve_run_dir

    promoted = promote_run(resolve_run_dir(args.run, args.runs_dir), args.runs_dir)
    console.print(f"Run {promoted['run_id']} is now the champion of '{promoted['dataset']}'.")
    return 0


def default_model_reference(runs_dir: Path) -> str:
    """champion:NAME when exactly one dataset has a champion; else the user must choose."""
    from tasks.errors import RegistryError
    from tasks.serving.registry import read_registry

    champions = sorted(read_registry(runs_dir)["champions"])
    if len(champions) != 1:
        known = ", ".join(champions) or "none"
        raise RegistryError(f"Pass --model RUN_DIR or --model champion:NAME (champions: {known}).")
    return f"champion:{champions[0]}"


def command_api(args: argparse.Namespace) -> int:
    import uvicorn

    from flows.runtime import check_listen_address
    from tasks.serving.api import build_app
    from tasks.serving.predict import load_run_model

    check_listen_address(args.host, args.port)  # before the model loads
    reference = args.model or default_model_reference(args.runs_dir)
    run_model = load_run_model(reference, args.runs_dir, args.trust, args.allow_failed)
    console.print(
        f"Serving run {run_model.card['run_id']} at http://{args.host}:{args.port} "
        f"(reports under /runs/). Ctrl-C stops it."
    )
    uvicorn.run(build_app(run_model, args.runs_dir), host=args.host, port=args.port)
    return 0


def command_export_joblib(args: argparse.Namespace) -> int:
    from tasks.run.model_io import export_joblib
    from tasks.serving.predict import load_run_model

    run_model = load_run_model(args.model, args.runs_dir, args.trust, args.allow_failed)
    out = export_joblib(run_model.model, args.out)
    console.print(
        f"Wrote {out} (joblib: loading it runs code, so share it only with people who trust you).",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def add_runs_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="Runs directory (default: runs)."
    )


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="store_true",
        help="Load a model from outside the runs directory, or one this machine did not sign "
        "(its types are still checked; an old joblib model needs it).",
    )
    parser.add_argument(
        "--allow-failed",
        action="store_true",
        help="Use the model of a failed or unfinished run (refused otherwise).",
    )


def add_serving_parsers(commands: Any) -> None:
    """predict, runs, promote and api subcommands."""
    predict = commands.add_parser("predict", help="Predict new rows with a saved model.")
    predict.add_argument("--model", required=True, help="RUN_DIR or champion:NAME.")
    predict.add_argument("--data", required=True, type=Path, help="New rows (CSV or Parquet).")
    predict.add_argument("--out", required=True, type=Path, help="Output file (.csv/.parquet).")
    add_runs_dir_argument(predict)
    add_trust_argument(predict)
    predict.set_defaults(handler=command_predict)

    runs = commands.add_parser("runs", help="List runs, newest first, with the champions.")
    add_runs_dir_argument(runs)
    runs.add_argument("--dataset", metavar="NAME", help="Only the runs of this dataset.")
    runs.add_argument("--json", action="store_true", help="Print the rows as JSON.")
    runs.add_argument(
        "--check",
        action="store_true",
        help="Check that the champion registry agrees with the runs (exit 1 if not).",
    )
    runs.add_argument(
        "--repair", action="store_true", help="With --check: repair what it finds (nothing lost)."
    )
    runs.set_defaults(handler=command_runs)

    promote = commands.add_parser("promote", help="Make a run its dataset's champion.")
    promote.add_argument("run", help="Run id or run directory.")
    add_runs_dir_argument(promote)
    promote.set_defaults(handler=command_promote)

    export = commands.add_parser(
        "export-joblib", help="Write a run's checked model as a joblib file (opt-in; a pickle)."
    )
    export.add_argument("--model", required=True, help="RUN_DIR or champion:NAME.")
    export.add_argument("--out", required=True, type=Path, help="The .joblib file to write.")
    add_runs_dir_argument(export)
    add_trust_argument(export)
    export.set_defaults(handler=command_export_joblib)

    api = commands.add_parser("api", help="Serve a model over HTTP (FastAPI + uvicorn).")
    api.add_argument("--model", help="RUN_DIR or champion:NAME (default: the only champion).")
    api.add_argument("--host", default=DEFAULT_HOST, help="Address to bind (default 127.0.0.1).")
    api.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port (default 8000).")
    add_runs_dir_argument(api)
    add_trust_argument(api)
    api.set_defaults(handler=command_api)
