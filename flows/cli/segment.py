"""`tabpipe segment`: customer segmentation (k-means or agglomerative, k chosen by silhouette)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def convenience_overrides(args: argparse.Namespace) -> list[str]:
    """--k-min/--k-max/--algorithm/--compare as the config keys they stand for."""
    pairs = {
        "clustering.k_min": args.k_min,
        "clustering.k_max": args.k_max,
        "clustering.algorithm": args.algorithm,
        "target": args.compare,
    }
    return [f"{key}={value}" for key, value in pairs.items() if value is not None]


PER_K_COLUMNS = ("k", "silhouette", "inertia", "smallest_cluster", "largest_cluster", "chosen")


def readable(value: Any) -> str:
    """Numbers to five significant digits (profiles mix grams and millimetres), None as n/a."""
    from tasks.run.report import format_value  # scikit-learn: imported when a result is shown

    return format_value(value, ".5g")


def rows_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(readable(row.get(column)) for column in columns))
    return table


def profile_table(profiles: Any) -> Table:
    """One column per cluster, one row per fact: reads well however many features there are."""
    table = Table(title="Cluster profiles (size, means, most frequent categories)")
    table.add_column("")
    for cluster in profiles.index:
        table.add_column(f"cluster {cluster}", justify="right")
    for fact in profiles.columns:
        table.add_row(str(fact), *(readable(value) for value in profiles[fact].tolist()))
    return table


def print_segment_result(run_dir: Path) -> None:
    """Silhouette per k, the chosen k and why, the cluster profiles, where the run is."""
    import pandas as pd

    metrics = json.loads((run_dir / "metrics.json").read_text())
    title = f"Silhouette per k ({metrics['algorithm']})"
    console.print(rows_table(title, metrics["per_k"], list(PER_K_COLUMNS)))
    console.print(f"Chosen k = {metrics['best_k']}: {metrics['selection_reason']}")
    profiles = pd.read_csv(run_dir / "cluster_profile.csv").set_index("cluster")
    console.print(profile_table(profiles))
    comparison = metrics.get("held_out_comparison")
    if comparison:
        console.print(
            f"Against held-out '{comparison['column']}': adjusted Rand index "
            f"{comparison['adjusted_rand_index']:.3f}"
        )
    console.print(f"Run directory: {run_dir}")


def command_segment(args: argparse.Namespace) -> int:
    from flows.cli.console import prefect_session
    from flows.cli.stop import stoppable
    from flows.segment import SegmentParameters, resolve_segment_config, segment

    params = SegmentParameters(
        config=str(args.config) if args.config else None,
        data=str(args.data) if args.data else None,
        overrides=[*(args.set or []), *convenience_overrides(args)],
    )
    dataset = resolve_segment_config(params).dataset_name  # config errors before Prefect starts
    with stoppable(), prefect_session(args.debug):
        from prefect import tags

        with tags("tabpipe", f"dataset:{dataset}"):
            run_dir = Path(segment(params))
        print_segment_result(run_dir)
    return 0


def add_segment_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "segment", help="Cluster rows into segments; the silhouette score chooses k."
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML config (task: clustering).")
    parser.add_argument("--data", type=Path, help="CSV or Parquet file (without a config).")
    parser.add_argument("--k-min", type=int, help="Smallest k tried (default 2).")
    parser.add_argument("--k-max", type=int, help="Largest k tried (default 8).")
    parser.add_argument("--algorithm", choices=["kmeans", "agglomerative"], help="Default kmeans.")
    parser.add_argument(
        "--compare", metavar="COLUMN", help="Hold this column out and compare the clusters with it."
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="Override a config field, e.g. --set clustering.linkage=average.",
    )
    parser.set_defaults(handler=command_segment)
