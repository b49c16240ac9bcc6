"""`tabpipe metrics`: the course's metrics from a confusion matrix, with the training flow's code.

Binary: `tabpipe metrics --tn 50 --fp 10 --fn 5 --tp 35`. Multiclass: `--matrix FILE`, a CSV whose
first column holds the true labels and whose header holds the predicted labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

COUNT_FLAGS = ("tn", "fp", "fn", "tp")
# What each binary metric is, by the course's definitions (DESIGN.md, "Metrics").
BINARY_DEFINITIONS = {
    "accuracy": "(TP+TN)/(TP+FP+TN+FN)",
    "precision": "TP/(TP+FP)",
    "recall": "TP/(TP+FN), sensitivity",
    "specificity": "TN/(TN+FP)",
    "npv": "TN/(TN+FN), negative predictive value",
    "f1": "2·precision·recall/(precision+recall)",
    "balanced_accuracy": "(recall+specificity)/2",
    "fpr": "FP/(FP+TN) = 1 − specificity",
    "fnr": "FN/(FN+TP) = 1 − recall",
    "prevalence": "(TP+FN)/(TP+FP+TN+FN)",
    "mcc": "(TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN))",
}
PER_CLASS_COLUMNS = ("precision", "recall", "specificity", "npv", "f1")

console = Console()


def count(text: str) -> int:
    """argparse type: a count of rows, a whole number ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is negative; counts are ≥ 0")
    return value


def read_run_confusion_matrix(path: Path) -> tuple[np.ndarray, list[str]]:
    """The test confusion matrix a training run wrote to its metrics.json."""
    from tasks.errors import DataError

    try:
        stored = json.loads(path.read_text(encoding="utf-8"))["test_metrics"]["confusion_matrix"]
        return np.asarray(stored["matrix"], dtype=int), [str(label) for label in stored["labels"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"'{path}' is not a classification run's metrics.json with a confusion matrix."
        ) from error


def read_confusion_matrix(path: Path) -> tuple[np.ndarray, list[str]]:
    """A labelled square matrix from CSV: rows are true labels (first column), columns predicted
    labels (header), reordered to the rows' order; every cell a whole number ≥ 0. A run's
    metrics.json works too."""
    from tasks.data.read import read_table
    from tasks.errors import DataError

    if path.suffix.lower() == ".json":
        return read_run_confusion_matrix(path)
    frame = read_table(path).frame
    frame = frame.set_index(frame.columns[0])
    rows = [str(label) for label in frame.index]
    columns = [str(label) for label in frame.columns]
    if len(set(rows)) != len(rows):
        raise DataError(f"Confusion matrix '{path}' repeats a true label in its first column.")
    if sorted(rows) != sorted(columns):
        raise DataError(
            f"Confusion matrix '{path}' must have the same labels as rows (true: {rows}) "
            f"and header (predicted: {columns})."
        )
    if len(rows) < 2:
        raise DataError(f"Confusion matrix '{path}' needs at least two labels.")
    frame.index, frame.columns = rows, columns
    import pandas as pd  # here, not at start-up: every command imports this module

    values = frame.loc[rows, rows].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).any() or (values < 0).any() or (values % 1 != 0).any():
        raise DataError(f"Confusion matrix '{path}' must hold whole-number counts ≥ 0 only.")
    return values.astype(int), rows


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def binary_table(report: dict[str, Any]) -> Table:
    from tasks.evaluation.metrics import undefined_reason

    counts = report["counts"]
    table = Table(
        title="Binary metrics (TN={tn}, FP={fp}, FN={fn}, TP={tp})".format(**counts),
        caption="n/a: the ratio's denominator is 0 (reason shown), never a silent 0.",
    )
    for column in ("metric", "value", "definition", "n/a because"):
        table.add_column(column, overflow="fold")
    for name, definition in BINARY_DEFINITIONS.items():
        reason = undefined_reason(name, report["notes"]) or ""
        table.add_row(name, format_ratio(report[name]), definition, reason)
    return table


def per_class_table(report: dict[str, Any]) -> Table:
    table = Table(title="Per class (one vs rest)")
    for column in ("class", "support", *PER_CLASS_COLUMNS):
        table.add_column(column, justify="right" if column != "class" else "left")
    for label, metrics in report["per_class"].items():
        values = (format_ratio(metrics[name]) for name in PER_CLASS_COLUMNS)
        table.add_row(label, str(report["support"][label]), *values)
    return table


def averages_table(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"Averages (accuracy {format_ratio(report['accuracy'])})",
        caption="micro: pool TP, FP, FN over classes, then the ratio; macro: mean over classes.",
    )
    for column in ("average", "precision", "recall", "f1", "specificity", "npv"):
        table.add_column(column, justify="right" if column != "average" else "left")
    for kind in ("micro", "macro"):
        values = report[kind]
        table.add_row(
            kind,
            *(
                format_ratio(values.get(name)) if name in values else ""
                for name in ("precision", "recall", "f1", "specificity", "npv")
            ),
        )
    return table


def undefined_notes(report: dict[str, Any]) -> list[str]:
    """Every 'is undefined' note of a multiclass report, per-class ones named by class."""
    notes = [
        f"class '{label}': {note}"
        for label, metrics in report["per_class"].items()
        for note in metrics["notes"]
    ]
    return notes + list(report["notes"])


def compute_report(args: argparse.Namespace) -> dict[str, Any]:
    """Binary metrics from the four counts, or multiclass ones from --matrix."""
    from tasks.errors import ConfigError
    from tasks.evaluation.metrics import binary_metrics, multiclass_metrics

    given = {flag: getattr(args, flag) for flag in COUNT_FLAGS}
    if args.matrix is not None:
        if any(value is not None for value in given.values()):
            raise ConfigError("Give either --matrix FILE or the four counts, not both.")
        matrix, labels = read_confusion_matrix(args.matrix)
        report = multiclass_metrics(matrix, labels)
        return {"labels": labels, "confusion_matrix": matrix.tolist(), **report}
    missing = [f"--{flag}" for flag, value in given.items() if value is None]
    if missing:
        raise ConfigError(
            f"Missing {', '.join(missing)}: give all of --tn --fp --fn --tp (or --matrix FILE)."
        )
    return binary_metrics(args.tn, args.fp, args.fn, args.tp)


def print_report(report: dict[str, Any]) -> None:
    if "per_class" not in report:
        console.print(binary_table(report))
        return
    console.print(per_class_table(report))
    console.print(averages_table(report))
    for note in undefined_notes(report):
        console.print(f"n/a: {note}", highlight=False)


def command_metrics(args: argparse.Namespace) -> int:
    from tasks.run.rundir import to_jsonable

    report = compute_report(args)
    if args.json:
        sys.stdout.write(json.dumps(to_jsonable(report), indent=2, sort_keys=True) + "\n")
    else:
        print_report(report)
    return 0


def add_metrics_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "metrics",
        help="Classification metrics from a confusion matrix (the training flow's code).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, meaning in zip(
        COUNT_FLAGS,
        ("true negatives", "false positives", "false negatives", "true positives"),
        strict=True,
    ):
        parser.add_argument(f"--{flag}", type=count, help=f"Number of {meaning}.")
    parser.add_argument(
        "--matrix",
        type=Path,
        help="Confusion matrix CSV (first column true labels, header predicted labels), "
        "or a run's metrics.json.",
    )
    parser.add_argument("--json", action="store_true", help="Print JSON instead of tables.")
    parser.set_defaults(handler=command_metrics)
