"""The run directory: built in a hidden sibling, renamed into place only when it is whole.

runs/.<run_id>.partial/  while the run works (a crash or kill -9 leaves only this)
runs/<run_id>/           complete, or failed with manifest.json saying so
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tasks.errors import ConfigError

TRACKED_PACKAGES = (
    "tabpipe",
    "prefect",
    "pandera",
    "imbalanced-learn",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "matplotlib",
    "joblib",
    "pyarrow",
)
PARTIAL_SUFFIX = ".partial"
# A run's training rows (or a sample) that later runs of its dataset measure drift against.
REFERENCE_FILE_NAME = "reference.parquet"


@dataclass(frozen=True)
class RunDir:
    run_id: str
    final: Path
    staging: Path

    def path(self, *parts: str) -> Path:
        """Where a file of the run is written while the run works."""
        return self.staging.joinpath(*parts)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id(name: str) -> str:
    """Sortable by time and unique even for runs started in the same second."""
    return f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def start_run(runs_dir: Path, name: str) -> RunDir:
    """Create the hidden staging directory of a new run (never an existing one)."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, PermissionError, OSError) as error:
        raise ConfigError(
            f"runs_dir '{runs_dir}' cannot be used ({error.strerror or error}); set runs_dir to "
            "a writable folder."
        ) from None
    while True:
        run_id = new_run_id(name)
        final = runs_dir / run_id
        staging = runs_dir / f".{run_id}{PARTIAL_SUFFIX}"
        if not final.exists():
            try:
                staging.mkdir()
            except FileExistsError:
                continue
            return RunDir(run_id, final, staging)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def to_jsonable(value: Any) -> Any:
    """numpy scalars, paths, tuples and non-finite floats made JSON-safe (NaN and inf -> null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: Any) -> Path:
    """Stable JSON: sorted keys, so the same content gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def replace_text(path: Path, text: str) -> Path:
    """Replace a file whole (a hidden sibling, then a rename): readers of a published run see the
    old file or the new one, never a torn write."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return path


def replace_json(path: Path, payload: Any) -> Path:
    """write_json's bytes, replacing the file whole."""
    text = json.dumps(to_jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
    return replace_text(path, text + "\n")


def publish_run(run: RunDir) -> Path:
    """Rename the staging directory into place: a run appears whole or not at all."""
    os.replace(run.staging, run.final)
    return run.final


def fail_run(run: RunDir, manifest: dict[str, Any], error: BaseException) -> Path:
    """Keep what was written, mark it failed with the error, and put it in place."""
    failed = {
        **manifest,
        "status": "failed",
        "error": str(error),
        "error_type": type(error).__name__,
        "ended_at": utc_now(),
    }
    write_json(run.path("manifest.json"), failed)
    return publish_run(run)


class StageClock:
    """Seconds per pipeline stage, for the manifest (timings never go into metrics.json)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 4)
        self._last = now


@contextmanager
def failed_run_on_error(run: RunDir, manifest: dict[str, Any]) -> Iterator[None]:
    """Any error inside marks the run failed (manifest says why) and is raised again."""
    try:
        yield
    except BaseException as error:
        fail_run(run, manifest, error)
        raise
