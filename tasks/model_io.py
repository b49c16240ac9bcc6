"""Saving the fitted pipeline with its card (models/best.json), and loading it back safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from imblearn.pipeline import Pipeline

from tasks.data import file_sha256


def input_columns(X: pd.DataFrame) -> dict[str, str]:
    """The raw columns the model takes, with their dtypes (the training schema minus target)."""
    return {str(column): str(dtype) for column, dtype in X.dtypes.items()}


def model_card(
    model_path: Path,
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


class ModelIntegrityError(ValueError):
    """The model file does not match its card (tampered with, truncated or replaced)."""


def load_checked_model(model_path: Path) -> tuple[Pipeline, dict[str, Any]]:
    """Load models/best.joblib after checking its sha256 against models/best.json."""
    card_path = model_path.with_suffix(".json")
    if not card_path.is_file():
        raise ModelIntegrityError(f"Model card '{card_path}' is missing; refusing to load.")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if file_sha256(model_path) != card["sha256"]:
        raise ModelIntegrityError(
            f"Model file '{model_path}' does not match the sha256 in '{card_path}'; "
            "refusing to load."
        )
    return joblib.load(model_path), card
