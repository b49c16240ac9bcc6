"""`tabpipe replay RUN_DIR`: train again from a run's resolved config and report any difference."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.data import DataError, file_sha256

COMPARED_FILES = ("metrics.json", "predictions.csv")
MAX_REPORTED_DIFFERENCES = 10


@dataclass
class ReplayReport:
    original: Path
    replayed: Path
    identical_files: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences


def json_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Key paths whose values differ between two JSON documents."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += json_differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found += json_differences(a, b, f"{path}[{i}]")
        return found
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def compare_runs(original: Path, replayed: Path) -> ReplayReport:
    """Byte comparison of metrics.json and predictions.csv, with the differing keys named."""
    report = ReplayReport(original, replayed)
    for name in COMPARED_FILES:
        if (original / name).read_bytes() == (replayed / name).read_bytes():
            report.identical_files.append(name)
        elif name.endswith(".json"):
            old, new = (json.loads((run / name).read_text()) for run in (original, replayed))
            report.differences += [f"{name} {d}" for d in json_differences(old, new)]
        else:
            report.differences.append(f"{name} differs")
    return report


def check_data_unchanged(manifest: dict[str, Any]) -> None:
    """Replaying on changed data would prove nothing: say so instead."""
    data = manifest.get("data") or {}
    path = Path(data.get("path", ""))
    if not path.is_file():
        raise DataError(f"The run's data file '{path}' no longer exists; cannot replay.")
    if file_sha256(path) != data.get("sha256"):
        raise DataError(f"The run's data file '{path}' has changed since the run (sha256 differs).")


def replay(run_dir: Path) -> ReplayReport:
    """Train from run_dir/config.yaml into a new run and compare the two."""
    from flows.train import TrainParameters, train

    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"'{run_dir}' is not a run directory (no manifest.json).")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("status") != "completed":
        raise DataError(
            f"Run '{run_dir.name}' did not complete; only complete runs can be replayed."
        )
    check_data_unchanged(manifest)
    replayed = Path(train(TrainParameters(config=str(run_dir / "config.yaml"))))
    return compare_runs(run_dir, replayed)


def command_replay(args: argparse.Namespace) -> int:
    from flows.cli import console

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
