"""The champion's training rows, as the reference a new run's data is compared with (drift).

Each run stores its training rows (or a seeded sample of them) in reference.parquet, so a
scheduled retrain on a file replaced in place still compares with what the champion saw. Runs
from before that are read back from their data file: the manifest records its path and sha256,
predictions.csv the test rows; when that file is gone or has changed, drift is skipped with a
note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import DiagnosticsConfig
from tasks.data.read import file_sha256, read_table
from tasks.errors import DataError, RegistryError
from tasks.evaluation.drift import compare_tables
from tasks.run.rundir import REFERENCE_FILE_NAME
from tasks.serving.registry import champion_run_id, read_json_or_none


@dataclass(frozen=True)
class Reference:
    """The champion's training rows (None when unknown) and what the drift file says of them."""

    frame: pd.DataFrame | None
    facts: dict[str, Any] = field(default_factory=dict)


def skipped(facts: dict[str, Any], note: str) -> Reference:
    return Reference(None, {**facts, "status": "skipped", "note": note})


def champion_training_rows(runs_dir: Path, dataset: str, target: str) -> Reference | None:
    """The reference for drift; None when the dataset has no champion yet."""
    try:
        run_id = champion_run_id(runs_dir, dataset)
    except RegistryError as error:
        return skipped({}, f"the registry could not be read: {error}")
    if run_id is None:
        return None
    run_dir = runs_dir / run_id
    manifest = read_json_or_none(run_dir / "manifest.json") or {}
    data = manifest.get("data") or {}
    facts = {
        "champion_run_id": run_id,
        "reference_data": data.get("path"),
        "reference_sha256": data.get("sha256"),
    }
    stored = stored_reference(run_dir / REFERENCE_FILE_NAME)
    if stored is not None:
        return Reference(stored, {**facts, "status": "compared", "reference": REFERENCE_FILE_NAME})
    path = Path(str(data.get("path", "")))
    if not data.get("path") or not path.is_file():
        return skipped(facts, f"the champion's data file '{path}' is gone.")
    if file_sha256(path) != data.get("sha256"):
        return skipped(
            facts,
            f"the champion's data file '{path}' has changed since it trained, so its training "
            "rows are unknown.",
        )
    try:
        frame = read_table(path).frame
        test_rows = pd.read_csv(run_dir / "predictions.csv", usecols=["row"])["row"]
    except (DataError, OSError, ValueError) as error:
        return skipped(facts, f"the champion's rows could not be read: {error}")
    if target not in frame.columns:
        return skipped(facts, f"the champion's data has no column '{target}'.")
    training = frame.loc[frame[target].notna() & ~frame.index.isin(test_rows)]
    return Reference(training, {**facts, "status": "compared"})


def stored_reference(path: Path) -> pd.DataFrame | None:
    """The rows the champion stored for drift; None when it stored none (or they are unreadable)."""
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError):
        return None


def drift_against_champion(
    runs_dir: Path,
    dataset: str,
    current: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    settings: DiagnosticsConfig,
) -> dict[str, Any] | None:
    """drift.json's content: this run's rows against the champion's training rows; None when
    the dataset has no champion."""
    reference = champion_training_rows(runs_dir, dataset, target)
    if reference is None:
        return None
    if reference.frame is None:
        return {**reference.facts, "drift_found": None}
    compared = compare_tables(
        reference.frame, current, features=features, target=target, settings=settings
    )
    return {**reference.facts, **compared}
