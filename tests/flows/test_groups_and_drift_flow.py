"""Through the real flow: a split by groups (audited), coded diagnostics in metrics.json and the
report, and drift of a second batch against the champion's training rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.runtime import TrainParameters
from flows.train import train
from tests.unit.data.test_split_groups_time import grouped_frame


def run(data: Path, runs_dir: Path) -> Path:
    params = TrainParameters(
        data=str(data),
        target="label",
        overrides=[
            "name=patients",
            "models=[logistic_regression]",
            "split.groups=auto",
            "split.cv_folds=3",
            f"runs_dir={runs_dir}",
        ],
    )
    return Path(train(params))


@pytest.fixture(scope="module")
def two_runs(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A scheduled retrain: the same file, replaced in place by the next batch (b moved)."""
    folder = tmp_path_factory.mktemp("groups")
    batch = folder / "batch.csv"
    frame = grouped_frame()
    frame.to_csv(batch, index=False)
    first = run(batch, folder / "runs")
    frame.assign(b=frame["b"] + 5.0).to_csv(batch, index=False)
    return first, run(batch, folder / "runs")


def test_the_group_split_is_audited_and_the_group_key_is_not_a_feature(
    two_runs: tuple[Path, Path],
) -> None:
    first, _ = two_runs
    audit = json.loads((first / "leakage_audit.json").read_text())
    assert audit["test_set"]["groups_shared"] == 0
    assert all(fold["groups_shared"] == 0 for fold in audit["cv_folds"])
    card = json.loads((first / "models" / "best.json").read_text())
    assert set(card["input_columns"]) == {"a", "b", "c"}


def test_diagnostics_are_in_metrics_and_at_the_top_of_the_report(
    two_runs: tuple[Path, Path],
) -> None:
    first, _ = two_runs
    metrics = json.loads((first / "metrics.json").read_text())
    codes = {record["code"]: record for record in metrics["diagnostics"]}
    assert {"target_proxy", "beats_baseline", "train_test_shift", "overfitting"} <= set(codes)
    assert "group_overlap" not in codes  # the groups were used
    assert codes["beats_baseline"]["severity"] in ("warn", "fail")  # labels are noise
    assert codes["beats_baseline"]["evidence"]["resampled"] == "groups"
    assert 0.0 <= codes["train_test_shift"]["evidence"]["auc"] <= 1.0  # checked: groups differ
    report = (first / "report.html").read_text()
    assert report.index('id="diagnostics"') < report.index('id="best-model"')


def test_the_second_batch_drifts_in_b_only_and_the_decision_says_so(
    two_runs: tuple[Path, Path],
) -> None:
    first, second = two_runs
    assert not (first / "drift.json").exists()  # no champion to compare with yet
    drift = json.loads((second / "drift.json").read_text())
    assert drift["status"] == "compared" and drift["champion_run_id"] == first.name
    # The champion's file was replaced: its own stored training rows are the reference.
    assert drift["reference"] == "reference.parquet"
    assert drift["reference_rows"] == json.loads((first / "metrics.json").read_text())["n_train"]
    # Like with like: the second run's own reference sample is what it compared.
    assert drift["current_rows"] == len(pd.read_parquet(second / "reference.parquet"))
    assert drift["drifted_columns"] == ["b"]
    assert json.loads((second / "champion.json").read_text())["drift_found"] is True
    assert (second / "plots" / "drift.png").is_file()
    assert 'id="drift"' in (second / "report.html").read_text()
