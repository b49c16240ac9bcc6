"""Saving the fitted pipeline with its signed card (models/best.skops + models/best.json), and
loading it back safely.

The model file is a skops file, not a pickle: loading it builds only the types on an explicit
list (scikit-learn, imbalanced-learn and tabpipe's own steps) and never runs code from the file.
The card carries the model's sha256 and an HMAC signature with this machine's key
(tasks/run/signing.py), so a file written by anyone else is refused even if the hash matches.
"""

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
from tasks.evaluation.evaluate import pipeline_of
from tasks.model_selection.audit import forget_training_rows
from tasks.run.rundir import package_versions, to_jsonable
from tasks.run.signing import check_card_signature, sign_card

MODEL_FILE_NAME = "best.skops"
LEGACY_MODEL_FILE_NAME = "best.joblib"  # runs before skops; loaded only with --trust
# Types a model file may hold beyond skops' own defaults (numpy, builtins, sklearn's core).
# tabpipe's own pipeline steps live in tasks.model_selection; lightgbm is an opt-in family.
TRUSTED_TYPE_PREFIXES = (
    "sklearn.",
    "imblearn.",
    "scipy.sparse.",
    "lightgbm.",
    "tasks.model_selection.",
)
# functools.partial: HistGradientBoosting's native-category preprocessor wraps check_array in one
# (skops checks the wrapped function and its arguments as types of their own); LightGBM keeps
# its parameters in an OrderedDict.
TRUSTED_EXACT_TYPES = frozenset(
    {
        "numpy.dtype",
        "functools.partial",
        "collections.OrderedDict",
        "tasks.model_selection.audit.FitAudit",
    }
)


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


def signed_card(card: dict[str, Any], runs_dir: Path) -> dict[str, Any]:
    """The card as it is written: JSON-safe, signed with this machine's key."""
    return sign_card(to_jsonable(card), runs_dir)


def save_model(model: Any, path: Path, content: bytes | None = None) -> Path:
    """The fitted pipeline as a skops file (no pickle); `content`: its model_file_bytes, when a
    CV worker made them already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(skops_bytes(model) if content is None else content)
    return path


def skops_bytes(model: Any) -> bytes:
    """What skops writes to a model file (skops.io.dump writes the same bytes)."""
    import skops.io as sio  # here: ~1 s to import, needed only once a run writes its model

    return sio.dumps(model)


def model_file_bytes(model: Any) -> bytes:
    """The model file of a training run: the fitted pipeline without the training row ids its
    audit steps kept. In a CV worker, the worker's copy loses them; in-process, the model."""
    forget_training_rows(pipeline_of(model))
    return skops_bytes(model)


def export_joblib(model: Any, path: Path) -> Path:
    """Opt-in export as joblib for tools that need a pickle (loading it can run code)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


class PackageVersionWarning(UserWarning):
    """The model was saved with other package versions than the ones loading it."""


def is_inside(path: Path, folder: Path) -> bool:
    """True when path (symlinks followed) lies inside folder."""
    return path.resolve().is_relative_to(folder.resolve())


def check_trusted_location(model_path: Path, runs_dir: Path, trust: bool) -> None:
    """Refuse a model from outside runs/ unless trusted."""
    if trust or is_inside(model_path, runs_dir):
        return
    raise UntrustedModelError(
        f"Model '{model_path}' is outside the runs directory '{runs_dir}'; pass --trust only "
        "for a file you trust."
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


def is_trusted_type(name: str) -> bool:
    return name.startswith(TRUSTED_TYPE_PREFIXES) or name in TRUSTED_EXACT_TYPES


def load_skops(model_path: Path) -> Any:
    """Build the model from a skops file, refusing any type not on the trusted list."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as error:  # not a skops archive at all: saved broken or replaced
        raise ModelIntegrityError(
            f"Model file '{model_path}' is not a readable skops file ({type(error).__name__})."
        ) from error
    unexpected = sorted(name for name in untrusted if not is_trusted_type(name))
    if unexpected:
        raise UntrustedModelError(
            f"Model file '{model_path}' holds types tabpipe never saves "
            f"({', '.join(unexpected[:3])}); refusing to load it."
        )
    try:
        return sio.load(model_path, trusted=untrusted)
    except Exception as error:  # a hash-checked file that still cannot be built
        raise ModelIntegrityError(
            f"Model file '{model_path}' cannot be loaded ({type(error).__name__})."
        ) from error


def load_legacy_joblib(model_path: Path, trust: bool) -> Any:
    """A model saved before skops: a pickle, so only for a user who vouches for it."""
    if not trust:
        raise UntrustedModelError(
            f"Model file '{model_path}' is a joblib pickle from an older tabpipe; loading one "
            "can run code, so pass --trust only if you trust it (or re-train)."
        )
    try:
        return joblib.load(model_path)
    except Exception as error:
        raise ModelIntegrityError(
            f"Model file '{model_path}' cannot be loaded ({type(error).__name__})."
        ) from error


def warn_on_version_differences(model_path: Path, card: dict[str, Any]) -> None:
    saved = card.get("package_versions")
    differences = version_differences(saved if isinstance(saved, dict) else {}, package_versions())
    if differences:
        listed = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in differences.items())
        warnings.warn(
            f"Model '{model_path}' was saved with other package versions ({listed}); "
            "its predictions may differ.",
            PackageVersionWarning,
            stacklevel=3,
        )


def load_checked_model(
    model_path: Path, runs_dir: Path, trust: bool = False
) -> tuple[Pipeline, dict[str, Any]]:
    """Load models/best.skops after checking where it lies, its card's signature (unless
    trusted) and its sha256; warns (PackageVersionWarning) when package versions differ."""
    check_trusted_location(model_path, runs_dir, trust)
    if not model_path.is_file():
        raise ModelIntegrityError(f"Model file '{model_path}' does not exist.")
    card_path = model_path.with_suffix(".json")
    card = read_card(card_path)
    if not trust:
        check_card_signature(card, card_path)
    if file_sha256(model_path) != card["sha256"]:
        raise ModelIntegrityError(
            f"Model file '{model_path}' does not match the sha256 in '{card_path}'; "
            "refusing to load."
        )
    if model_path.suffix == ".joblib":
        model = load_legacy_joblib(model_path, trust)
    else:
        model = load_skops(model_path)
    warn_on_version_differences(model_path, card)
    return model, card
