"""Loading a saved model: the hash, the runs-directory boundary and the package versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.errors import ModelIntegrityError, UntrustedModelError
from tasks.model_selection.pipeline import build_pipeline, family_registry
from tasks.run.model_io import (
    PackageVersionWarning,
    load_checked_model,
    load_skops,
    save_model,
    signed_card,
)
from tasks.run.rundir import package_versions
from tests.conftest import make_frame
from tests.trained_run import TrainedRun


def test_card_describes_the_model(trained_run: TrainedRun) -> None:
    card = json.loads(trained_run.model_path.with_suffix(".json").read_text())
    assert card["input_columns"] == {"x1": "float64", "x2": "float64", "colour": "category"}
    assert card["classes"] == ["no", "yes"]
    assert card["positive_label"] == "yes"
    assert card["run_id"] == trained_run.run_dir.name
    assert "decision_threshold" in card
    assert card["package_versions"]["scikit-learn"] == package_versions()["scikit-learn"]
    model, loaded_card = load_checked_model(trained_run.model_path, trained_run.runs_dir)
    assert loaded_card == card
    assert [str(c) for c in model.classes_] == ["no", "yes"]


def test_a_flipped_byte_is_refused(run_copy: TrainedRun) -> None:
    data = bytearray(run_copy.model_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    run_copy.model_path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the sha256"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)


def test_a_truncated_file_is_refused(run_copy: TrainedRun) -> None:
    data = run_copy.model_path.read_bytes()
    run_copy.model_path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelIntegrityError, match="does not match the sha256"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)


def test_a_missing_card_is_refused(run_copy: TrainedRun) -> None:
    run_copy.model_path.with_suffix(".json").unlink()
    with pytest.raises(ModelIntegrityError, match=r"card .* is missing"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)


def test_a_model_outside_runs_needs_trust(run_copy: TrainedRun, tmp_path: Path) -> None:
    outside = tmp_path / "downloaded"
    shutil.copytree(run_copy.run_dir, outside)
    model_path = outside / "models" / "best.skops"
    with pytest.raises(UntrustedModelError, match="--trust"):
        load_checked_model(model_path, run_copy.runs_dir)
    model, card = load_checked_model(model_path, run_copy.runs_dir, trust=True)
    assert card["run_id"] == run_copy.run_dir.name
    assert hasattr(model, "predict_proba")


def test_a_symlink_out_of_runs_is_refused(run_copy: TrainedRun, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.copytree(run_copy.run_dir, outside)
    link = run_copy.runs_dir / "looks-inside"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UntrustedModelError):
        load_checked_model(link / "models" / "best.skops", run_copy.runs_dir)


def test_other_package_versions_warn(run_copy: TrainedRun) -> None:
    card_path = run_copy.model_path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["package_versions"]["scikit-learn"] = "0.0.1"
    card_path.write_text(json.dumps(signed_card(card, run_copy.runs_dir)))  # a re-signed card
    with pytest.warns(PackageVersionWarning, match=r"scikit-learn 0\.0\.1 -> "):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_every_family_fitted_with_a_category_saves_and_loads_back(
    task: str, tmp_path: Path
) -> None:
    # Any family can be a run's best model; its saved file must load (predict, API, champion).
    frame = make_frame(160, positive_share=0.4, seed=3)
    target = "label"
    if task == "regression":
        frame = frame.assign(amount=frame["x2"].fillna(0) * 3 + (frame["label"] == "yes"))
        frame, target = frame.drop(columns="label"), "amount"
    profile = profile_frame(frame, target)
    X, y = frame.drop(columns=target), frame[target]
    for name, family in family_registry(profile.task).items():
        pipeline = build_pipeline(
            family, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
        ).fit(X, y)
        path = save_model(pipeline, tmp_path / f"{name}.skops")
        loaded = load_skops(path)
        assert np.array_equal(loaded.predict(X), pipeline.predict(X)), name
