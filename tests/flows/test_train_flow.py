"""End to end through Prefect (the test harness): the run-directory contract, exact
re-derivation of the metrics, a saved model usable in a fresh process, reproducibility."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from flows.replay import compare_runs, replay
from flows.runtime import TrainParameters
from flows.train import train
from tasks.errors import ConfigError, DataError
from tasks.evaluation.evaluate import report_test_metrics
from tests.conftest import PROJECT_ROOT, make_frame

CONTRACT_FILES = [
    "manifest.json",
    "metrics.json",
    "cv_results.csv",
    "predictions.csv",
    "leakage_audit.json",
    "report.html",
    "config.yaml",
    "schema.yaml",
    "models/best.skops",
    "models/best.json",
]
CONTRACT_PLOTS = [
    "confusion_matrix",
    "roc",
    "precision_recall",
    "cv_scores",
    "class_balance",
    "missing_values",
    "calibration",
    "permutation_importance",
]


def write_config(tmp_path: Path, data: Path, seed: int = 11, **extra: str) -> Path:
    lines = [
        f"data: {data}",
        "target: label",
        "name: tiny",
        f"runs_dir: {tmp_path / 'runs'}",
        "models: [logistic_regression, decision_tree]",
        "rebalance: [smote, class_weight]",
        "split: {cv_folds: 3, test_size: 0.25}",
        "threshold: {objective: f1}",
        f"seed: {seed}",
        *(f"{key}: {value}" for key, value in extra.items()),
    ]
    path = tmp_path / f"tiny-{seed}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flow")
    data = folder / "tiny.csv"
    make_frame(160, positive_share=0.2, seed=5).to_csv(data, index=False)
    return data


@pytest.fixture(scope="module")
def tiny_run(prefect_harness: None, tiny_data: Path) -> Path:
    config = write_config(tiny_data.parent, tiny_data)
    return Path(train(TrainParameters(config=str(config))))


def test_run_directory_holds_the_whole_contract(tiny_run: Path) -> None:
    for name in CONTRACT_FILES:
        assert (tiny_run / name).is_file(), name
    for name in CONTRACT_PLOTS:
        assert (tiny_run / "plots" / f"{name}.png").stat().st_size > 1000, name
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["seed"] == 11
    assert len(manifest["data"]["sha256"]) == 64
    assert manifest["flow_run_id"]
    assert {"load", "validate", "search", "evaluate", "write"} <= set(manifest["stage_seconds"])
    assert "scikit-learn" in manifest["package_versions"]
    assert not list(tiny_run.parent.glob(".*.partial"))


def test_metrics_record_selection_candidates_and_test_scores(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["selection_metric"] == "average_precision"
    assert "imbalance" in metrics["selection_reason"]
    assert metrics["positive_label"] == "yes"
    assert {f["family"] for f in metrics["families"]} == {"logistic_regression", "decision_tree"}
    cv_results = pd.read_csv(tiny_run / "cv_results.csv")
    assert len(cv_results) == sum(len(f["candidates"]) for f in metrics["families"])
    assert {"smote", "class_weight"} <= {
        c["params"]["rebalance"] for f in metrics["families"] for c in f["candidates"]
    }
    binary = metrics["test_metrics"]["binary"]
    assert {"accuracy", "precision", "recall", "specificity", "npv", "f1"} <= set(binary)
    assert metrics["leakage_audit"]["no_leakage_found"] is True
    assert 0 < metrics["test_metrics"]["decision_threshold"] < 1
    shift = next(d for d in metrics["diagnostics"] if d["code"] == "train_test_shift")
    assert shift["evidence"] == {"auc": None, "split": "random"}  # both sides from one table


def test_test_metrics_are_recomputable_exactly_from_predictions_csv(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    predictions = pd.read_csv(tiny_run / "predictions.csv", dtype={"y_true": str, "y_pred": str})
    recomputed = report_test_metrics(
        predictions,
        metrics["classes"],
        metrics["positive_label"],
        metrics["test_metrics"]["decision_threshold"],
        seed=11,
    )
    stored = metrics["test_metrics"]
    assert json.dumps(recomputed, sort_keys=True, default=float) == json.dumps(
        stored, sort_keys=True, default=float
    )


def test_saved_model_predicts_raw_rows_in_a_fresh_process(tiny_run: Path, tiny_data: Path) -> None:
    predictions = pd.read_csv(tiny_run / "predictions.csv", dtype={"y_pred": str})
    script = (
        "from pathlib import Path\n"
        "import pandas as pd\n"
        "from tasks.run.model_io import load_checked_model\n"
        f"model, _ = load_checked_model(Path({str(tiny_run / 'models' / 'best.skops')!r}), "
        f"Path({str(tiny_run.parent)!r}))\n"
        f"rows = pd.read_csv({str(tiny_data)!r}).drop(columns=['label'])\n"
        f"rows = rows.loc[{predictions['row'].tolist()!r}]\n"
        "print(','.join(model.predict(rows)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    assert result.stdout.strip().split(",") == predictions["y_pred"].tolist()


def test_same_seed_gives_byte_identical_results(tiny_run: Path, tiny_data: Path) -> None:
    config = write_config(tiny_data.parent, tiny_data)
    again = Path(train(TrainParameters(config=str(config))))
    assert again != tiny_run
    for name in ("metrics.json", "predictions.csv"):
        assert (again / name).read_bytes() == (tiny_run / name).read_bytes(), name


def test_a_different_seed_gives_different_folds(tiny_run: Path, tiny_data: Path) -> None:
    config = write_config(tiny_data.parent, tiny_data, seed=12)
    other = Path(train(TrainParameters(config=str(config))))

    def fold_fingerprints(run: Path) -> list[str]:
        audit = json.loads((run / "leakage_audit.json").read_text())
        return [fold["train_fold"]["fingerprint"] for fold in audit["cv_folds"]]

    assert fold_fingerprints(other) != fold_fingerprints(tiny_run)


def test_replay_reproduces_the_run(tiny_run: Path) -> None:
    report = replay(tiny_run)
    assert report.identical, report.differences
    assert report.identical_files == ["metrics.json", "predictions.csv"]
    assert compare_runs(tiny_run, report.replayed).identical


def test_a_failed_run_says_so_in_its_manifest(
    prefect_harness: None, tiny_data: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tiny_data, target="no_such_column")
    with pytest.raises(DataError, match="no_such_column"):
        train(TrainParameters(config=str(config)))
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "no_such_column" in manifest["error"]


def test_a_config_error_names_the_key_before_any_run_starts(
    tmp_path: Path, tiny_data: Path
) -> None:
    config = write_config(tmp_path, tiny_data, splitt="{cv_folds: 3}")
    with pytest.raises(ConfigError, match="unknown key 'splitt'"):
        train.fn(TrainParameters(config=str(config)))
    assert not (tmp_path / "runs").exists()


def test_bundled_multiclass_dataset_trains(prefect_harness: None, tmp_path: Path) -> None:
    params = TrainParameters(
        config=str(PROJECT_ROOT / "configs" / "penguins.yaml"),
        overrides=[f"runs_dir={tmp_path}", "models=[logistic_regression, knn]", "split.cv_folds=3"],
    )
    run = Path(train(params))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "multiclass"
    assert metrics["selection_metric"] == "f1_macro"
    assert set(metrics["test_metrics"]["per_class"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert metrics["test_metrics"]["macro"]["f1"] > 0.9
    assert "macro" in metrics["test_metrics"] and "micro" in metrics["test_metrics"]
