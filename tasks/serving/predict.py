"""Predictions on new rows with a saved model: checked file, training schema, card threshold."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from imblearn.pipeline import Pipeline

from schemas.infer import load_yaml_schema
from tasks.data.validate import validate_frame
from tasks.errors import (
    ConfigError,
    DataError,
    ModelIntegrityError,
    StorageError,
    ValidationFailed,
    storage_error,
)
from tasks.evaluation.evaluate import PROBABILITY_PREFIX
from tasks.run.model_io import LEGACY_MODEL_FILE_NAME, MODEL_FILE_NAME, load_checked_model
from tasks.run.rundir import PARTIAL_SUFFIX
from tasks.serving.answers import predict_with_card
from tasks.serving.registry import LOCK_FILE, REGISTRY_FILE, champion_dir, read_json_or_none

CHAMPION_PREFIX = "champion:"
MODEL_FILE = Path("models", MODEL_FILE_NAME)
LEGACY_MODEL_FILE = Path("models", LEGACY_MODEL_FILE_NAME)
PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class RunModel:
    """A saved model ready for new rows: the pipeline, its card, and the schema rows must pass."""

    run_dir: Path
    model: Pipeline
    card: dict[str, Any]
    schema: pa.DataFrameSchema
    target: str

    @property
    def input_columns(self) -> list[str]:
        return list(self.card["input_columns"])

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.card["classes"]]


def run_model_file(run_dir: Path) -> Path:
    """models/best.skops of a run; models/best.joblib of a run saved before skops."""
    legacy = run_dir / LEGACY_MODEL_FILE
    if not (run_dir / MODEL_FILE).exists() and legacy.exists():
        return legacy
    return run_dir / MODEL_FILE


def model_path_of(reference: str, runs_dir: Path) -> Path:
    """The model file of `champion:NAME`, of a run directory, or the file itself."""
    if reference.startswith(CHAMPION_PREFIX):
        return run_model_file(champion_dir(runs_dir, reference.removeprefix(CHAMPION_PREFIX)))
    path = Path(reference)
    return run_model_file(path) if path.is_dir() else path


def check_run_completed(run_dir: Path, allow_failed: bool) -> None:
    """A failed run's model, or one of a run still in progress (runs/.<id>.partial), is
    refused unless the user names it with --allow-failed."""
    if allow_failed:
        return
    manifest = read_json_or_none(run_dir / "manifest.json")
    status = manifest.get("status") if isinstance(manifest, dict) else None
    in_progress = run_dir.name.startswith(".") or run_dir.name.endswith(PARTIAL_SUFFIX)
    if in_progress or (manifest is not None and status != "completed"):
        state = (
            "is still in progress or was interrupted"
            if in_progress
            else f"did not complete (status '{status}')"
        )
        raise ModelIntegrityError(
            f"Run '{run_dir}' {state}, so its model is not used; pass --allow-failed to use "
            "it anyway."
        )


def prediction_schema(
    training: pa.DataFrameSchema, target: str, inputs: list[str]
) -> pa.DataFrameSchema:
    """The training schema for new rows: the target may be absent or empty; columns the model
    does not use (dropped in training) may be absent."""
    optional = {
        name: {"required": False}
        for name in training.columns
        if name not in inputs and name != target
    }
    if target in training.columns:
        optional[target] = {"required": False, "nullable": True}
    return training.update_columns(optional) if optional else training


def read_run_schema(run_dir: Path) -> pa.DataFrameSchema:
    path = run_dir / "schema.yaml"
    if not path.is_file():
        raise DataError(f"Run '{run_dir}' has no schema.yaml, so new rows cannot be validated.")
    try:
        return load_yaml_schema(path)  # bounded, no aliases: the runs directory may be shared
    except ConfigError as error:
        raise DataError(str(error)) from None


def load_run_model(
    reference: str, runs_dir: Path, trust: bool = False, allow_failed: bool = False
) -> RunModel:
    """The checked model (signature, hash, location, completed run) of a run, with the schema
    new rows must pass."""
    model_path = model_path_of(reference, runs_dir)
    run_dir = model_path.parent.parent
    check_run_completed(run_dir, allow_failed)
    model, card = load_checked_model(model_path, runs_dir, trust)
    metrics = read_json_or_none(run_dir / "metrics.json") or {}
    target = str(metrics.get("target", ""))
    schema = prediction_schema(read_run_schema(run_dir), target, list(card["input_columns"]))
    return RunModel(run_dir, model, card, schema, target)


def prediction_failure_message(cases: pd.DataFrame, source: str, run_model: RunModel) -> str:
    """One sentence naming the missing columns and the columns with failing values."""
    missing_rows = cases["check"].astype(str) == "column_in_dataframe"
    missing = [str(c) for c in dict.fromkeys(cases.loc[missing_rows, "failure_case"])]
    failing = [str(c) for c in dict.fromkeys(cases.loc[~missing_rows, "column"].dropna())]
    parts = []
    if missing:
        parts.append("missing column(s) " + ", ".join(f"'{c}'" for c in missing))
    if failing:
        parts.append(
            f"{int((~missing_rows).sum())} failing value(s) in column(s) "
            + ", ".join(f"'{c}'" for c in failing)
        )
    return (
        f"Data '{source}' does not match the training schema of run "
        f"{run_model.card['run_id']}: {'; '.join(parts) or 'see the failure cases'}."
    )


def predict_rows(run_model: RunModel, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate new rows with the training schema, then predict: row, [y_true,] y_pred and
    proba_<class> per class. Raises ValidationFailed naming every failing column."""
    if frame.empty:
        raise DataError(f"Data '{source}' has no rows to predict.")
    try:
        validated = validate_frame(frame, run_model.schema, source)
    except ValidationFailed as failure:
        message = prediction_failure_message(failure.failure_cases, source, run_model)
        raise ValidationFailed(message, failure.failure_cases) from None
    output = predict_with_card(run_model.model, run_model.card, validated)
    result = pd.DataFrame({"row": frame.index, "y_pred": output["y_pred"].to_numpy()})
    if run_model.target in validated.columns:
        truth = validated[run_model.target]
        result.insert(
            1, "y_true", (truth if not run_model.classes else truth.astype("string")).to_numpy()
        )
    for label in run_model.classes:
        result[f"{PROBABILITY_PREFIX}{label}"] = output[label].to_numpy()
    return result


def class_balance(predictions: pd.DataFrame, classes: list[str]) -> list[dict[str, Any]]:
    """How many rows were predicted as each class, and their share."""
    counts = predictions["y_pred"].value_counts().reindex(classes, fill_value=0)
    total = max(int(counts.sum()), 1)
    return [{"class": c, "rows": int(n), "share": int(n) / total} for c, n in counts.items()]


def value_summary(predictions: pd.DataFrame) -> list[dict[str, Any]]:
    """A regressor's predicted values in a few numbers: count, mean, spread and quartiles."""
    described = predictions["y_pred"].astype(float).describe()
    return [{"statistic": str(name), "value": float(value)} for name, value in described.items()]


def prediction_summary(predictions: pd.DataFrame, classes: list[str]) -> list[dict[str, Any]]:
    """What was predicted, at a glance: the class balance, or a regressor's value summary."""
    return class_balance(predictions, classes) if classes else value_summary(predictions)


def is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def run_file_owner(out: Path, runs_dir: Path, run_dir: Path) -> Path | None:
    """The run directory (or registry file) `out` would land in, if any: runs are never
    overwritten. Paths are resolved, so symlinks and `..` cannot sneak past."""
    if is_within(out, run_dir):
        return run_dir
    if not is_within(out, runs_dir) or out == runs_dir:
        return None
    first = runs_dir / out.relative_to(runs_dir).parts[0]
    inside_a_folder = first != out
    if inside_a_folder or out.name in (REGISTRY_FILE, LOCK_FILE) or out.name.startswith("."):
        return first
    return None


def check_output_path(out: Path, *, data: Path, runs_dir: Path, run_dir: Path) -> Path:
    """Refuse an output path that is the input data, a run's file or a directory, and prove
    its folder is writable (a probe file, removed at once), all before any work starts."""
    resolved = out.resolve()
    if out.is_dir():
        raise StorageError(
            f"--out '{out}' is a directory; give a file path such as '{out / 'predictions.csv'}'."
        )
    if resolved == data.resolve() or (out.exists() and data.exists() and out.samefile(data)):
        raise StorageError(
            f"--out '{out}' is the data file being scored; write the predictions to another file."
        )
    owner = run_file_owner(resolved, runs_dir.resolve(), run_dir.resolve())
    if owner is not None:
        raise StorageError(
            f"--out '{out}' is inside '{owner}', which belongs to the runs; write the "
            "predictions outside run directories."
        )
    existing = next(parent for parent in resolved.parents if parent.exists())
    if not existing.is_dir():
        raise StorageError(f"A part of --out '{out}' ('{existing}') is a file, not a folder.")
    probe = temporary_sibling(resolved)
    try:
        resolved.parent.mkdir(parents=True, exist_ok=True)
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as error:
        raise storage_error(out, error) from error
    return out


def temporary_sibling(path: Path) -> Path:
    """A hidden file next to `path` that keeps its suffixes (so .csv.gz still compresses)."""
    return path.with_name(f".{secrets.token_hex(4)}.tmp.{path.name}")


def write_predictions_file(predictions: pd.DataFrame, path: Path) -> Path:
    """CSV (full float precision) or Parquet by the file's suffix, written to a hidden sibling
    and renamed: `path` is the old file or the whole new one, never a torn write."""
    temporary = temporary_sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in PARQUET_SUFFIXES:
            predictions.to_parquet(temporary, index=False)
        else:
            predictions.to_csv(temporary, index=False, float_format="%.17g")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise storage_error(path, error) from error
    return path
