"""Replay: train again from a run's resolved config and report any difference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.data.read import file_sha256
from tasks.errors import DataError

COMPARED_FILES = ("metrics.json", "predictions.csv")


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
    from flows.runtime import TrainParameters
    from flows.train import train

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
