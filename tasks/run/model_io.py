"""Saving the fitted pipeline with its card (models/best.json), and loading it back safely."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from imblearn.pipeline import Pipeline

from tasks.data.read import file_sha256
from tasks.errors import ModelIntegrityError, UntrustedModelError
from tasks.run.rundir import package_versions


def input_columns(X: pd.DataFrame) -> dict[str, str]:
    """The raw columns the model takes, with their dtypes (the training schema minus target)."""
    return {str(column): str(dtype) for column, dtype in X.dtypes.items()}


def model_card(
    model_path: Path,
    *,
    run_id: str,
    family: str,
    best_params: dict[str, Any],
    inputs: dict[str, str],
    classes: list[str],
    positive_label: str | None,
    threshold: float | None,
    test_metrics: dict[str, Any],
    versions: dict[str, str],
) -> dict[str, Any]:
    """What a later user needs to trust and use the model file."""
    return {
        "model_file": model_path.name,
        "sha256": file_sha256(model_path),
        "run_id": run_id,
        "family": family,
        "best_params": best_params,
        "input_columns": inputs,
        "classes": classes,
        "positive_label": positive_label,
        "decision_threshold": threshold,
        "test_metrics": test_metrics,
        "package_versions": versions,
    }


def save_model(model: Pipeline, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


class PackageVersionWarning(UserWarning):
    """The model was saved with other package versions than the ones loading it."""


def is_inside(path: Path, folder: Path) -> bool:
    """True when path (symlinks followed) lies inside folder."""
    return path.resolve().is_relative_to(folder.resolve())


def check_trusted_location(model_path: Path, runs_dir: Path, trust: bool) -> None:
    """Refuse a model from outside runs/ unless trusted: loading a joblib file can run code."""
    if trust or is_inside(model_path, runs_dir):
        return
    raise UntrustedModelError(
        f"Model '{model_path}' is outside the runs directory '{runs_dir}'; loading a joblib "
        "file can run arbitrary code, so pass --trust only for a file you trust."
    )


def version_differences(saved: dict[str, str], current: dict[str, str]) -> dict[str, list[Any]]:
    """Packages whose version at save time differs from now: name -> [saved, current]."""
    names = sorted(set(saved) | set(current))
    return {n: [saved.get(n), current.get(n)] for n in names if saved.get(n) != current.get(n)}


def read_card(card_path: Path) -> dict[str, Any]:
    if not card_path.is_file():
        raise ModelIntegrityError(f"Model card '{card_path}' is missing; refusing to load.")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelIntegrityError(f"Model card '{card_path}' is not valid JSON.") from error
    if not isinstance(card, dict) or not isinstance(card.get("sha256"), str):
        raise ModelIntegrityError(f"Model card '{card_path}' has no sha256; refusing to load.")
    return card


def load_checked_model(
    model_path: Path, runs_dir: Path, trust: bool = False
) -> tuple[Pipeline, dict[str, Any]]:
    """Load models/best.joblib after checking where it lies and its sha256 against
    models/best.json; warns (PackageVersionWarning) when package versions differ."""
    check_trusted_location(model_path, runs_dir, trust)
    if not model_path.is_file():
        raise ModelIntegrityError(f"Model file '{model_path}' does not exist.")
    card_path = model_path.with_suffix(".json")
    card = read_card(card_path)
    if file_sha256(model_path) != card["sha256"]:
        raise ModelIntegrityError(
            f"Model file '{model_path}' does not match the sha256 in '{card_path}'; "
            "refusing to load."
        )
    try:
        model = joblib.load(model_path)
    except Exception as error:  # a matching hash but an unreadable file: saved broken
        raise ModelIntegrityError(
            f"Model file '{model_path}' cannot be loaded: {error}."
        ) from error
    differences = version_differences(card.get("package_versions", {}), package_versions())
    if differences:
        listed = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in differences.items())
        warnings.warn(
            f"Model '{model_path}' was saved with other package versions ({listed}); "
            "its predictions may differ.",
            PackageVersionWarning,
            stacklevel=2,
        )
    return model, card
