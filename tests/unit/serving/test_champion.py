"""The champion decision: a paired bootstrap on the new run's test rows, and the registry."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    roc_auc_score,
)

from flows.cli.main import main
from flows.worker_work import WorkerWork
from tasks.data.read import read_table
from tasks.data.validate import validate_frame
from tasks.errors import RegistryError
from tasks.evaluation.paired import weighted_label_scores, weighted_ranking_scores
from tasks.model_selection.parallel import release_worker_pool, start_in_worker
from tasks.run.model_io import load_checked_model, load_skops, model_file_bytes, save_model
from tasks.run.rundir import fail_run, start_run
from tasks.serving.answers import predict_with_card
from tasks.serving.champion import (
    champion_answers_or_error,
    judge_against_champion,
    paired_bootstrap,
)
from tasks.serving.predict import read_run_schema
from tasks.serving.registry import (
    REGISTRY_FILE,
    champion_run_id,
    list_runs,
    read_registry,
    record_champion,
    selection_score,
)
from tests.trained_run import DATASET, TrainedRun, train_tiny


def repeat_by_weights(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.repeat(values, weights.astype(int))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_ranking_scores_equal_sklearn_on_the_resampled_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positive = rng.random(40) < 0.3
    score = np.round(rng.random(40), 1)  # many ties
    weights = rng.multinomial(40, np.full(40, 1 / 40), size=3).astype(float)
    scores = weighted_ranking_scores(positive, score, weights)
    for b in range(3):
        y, s = repeat_by_weights(positive, weights[b]), repeat_by_weights(score, weights[b])
        assert scores["roc_auc"][b] == pytest.approx(roc_auc_score(y, s))
        assert scores["average_precision"][b] == pytest.approx(average_precision_score(y, s))


def test_weighted_ranking_scores_are_undefined_without_one_class() -> None:
    score, weights = np.linspace(0, 1, 6), np.ones((2, 6))
    negatives = weighted_ranking_scores(np.zeros(6, dtype=bool), score, weights)
    assert np.isnan(negatives["roc_auc"]).all() and np.isnan(negatives["average_precision"]).all()
    positives = weighted_ranking_scores(np.ones(6, dtype=bool), score, weights)
    assert np.isnan(positives["roc_auc"]).all()
    assert positives["average_precision"] == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_label_scores_equal_sklearn_on_the_resampled_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true, pred = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    weights = rng.multinomial(60, np.full(60, 1 / 60), size=2).astype(float)
    scores = weighted_label_scores(true, pred, 3, 1, weights)
    for b in range(2):
        t, p = repeat_by_weights(true, weights[b]), repeat_by_weights(pred, weights[b])
        assert scores["accuracy"][b] == pytest.approx(accuracy_score(t, p))
        assert scores["balanced_accuracy"][b] == pytest.approx(balanced_accuracy_score(t, p))
        assert scores["f1_macro"][b] == pytest.approx(f1_score(t, p, average="macro"))
        assert scores["f1"][b] == pytest.approx(f1_score(t, p, labels=[1], average="macro"))


def test_paired_bootstrap_is_seeded_and_sees_a_real_difference() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.4
    good = positive + rng.normal(scale=0.5, size=200)
    noise = rng.random(200)

    def score_of(s: np.ndarray):  # type: ignore[no-untyped-def]
        return lambda w: weighted_ranking_scores(positive, s, w)["roc_auc"]

    first = paired_bootstrap(score_of(good), score_of(noise), 200, 500, seed=7)
    again = paired_bootstrap(score_of(good), score_of(noise), 200, 500, seed=7)
    assert first == again
    assert first["ci_low"] > 0
    assert first["new_score"] == pytest.approx(roc_auc_score(positive, good))
    same = paired_bootstrap(score_of(good), score_of(good), 200, 500, seed=7)
    assert same["ci_low"] == same["ci_high"] == 0.0


def test_the_champion_scores_its_test_rows_as_recorded(trained_run: TrainedRun) -> None:
    """The saved model reproduces predictions.csv on the rows recorded_test_rows rebuilds."""
    predictions, X_test = recorded_test_rows(trained_run)
    model, card = load_checked_model(trained_run.model_path, trained_run.runs_dir)
    again = predict_with_card(model, card, X_test)
    np.testing.assert_allclose(again["yes"].to_numpy(), predictions["proba_yes"].to_numpy())


def recorded_test_rows(run: TrainedRun) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's predictions.csv and its test rows' features, validated as in training."""
    predictions = pd.read_csv(run.run_dir / "predictions.csv", dtype={"y_true": str, "y_pred": str})
    frame = validate_frame(read_table(run.data).frame, read_run_schema(run.run_dir), "data")
    return predictions, frame.loc[predictions["row"], ["x1", "x2", "colour"]]


def test_first_run_became_champion(trained_run: TrainedRun) -> None:
    assert champion_run_id(trained_run.runs_dir, DATASET) == trained_run.run_dir.name
    decision = json.loads((trained_run.run_dir / "champion.json").read_text())
    assert decision["outcome"] == "first-champion"
    assert decision["becomes_champion"] is True
    summary = (trained_run.run_dir / "report.html").read_text()
    assert "Becomes champion" in summary


def crown_copy(run_copy: TrainedRun) -> None:
    """Give the private runs directory the same champion as the shared one."""
    record_champion(
        run_copy.runs_dir,
        {
            "dataset": DATASET,
            "run_id": run_copy.run_dir.name,
            "becomes_champion": True,
            "compared_with": None,
            "reason": "test setup",
        },
    )


def test_a_clearly_worse_run_is_not_promoted(run_copy: TrainedRun) -> None:
    crown_copy(run_copy)
    predictions, X_test = recorded_test_rows(run_copy)
    metrics = json.loads((run_copy.run_dir / "metrics.json").read_text())
    worse = predictions.assign(
        proba_yes=1 - predictions["proba_yes"], proba_no=predictions["proba_yes"]
    )
    manifest = json.loads((run_copy.run_dir / "manifest.json").read_text())
    other_seed = {
        "data_sha256": manifest["data"]["sha256"],
        "seed": manifest["seed"] + 1,
        "test_size": manifest["config"]["split"]["test_size"],
    }
    decision = judge_against_champion(
        run_copy.runs_dir, DATASET, "tiny-worse", metrics, worse, X_test, 0, other_seed
    )
    assert decision["note"].startswith("the champion was trained with another seed")
    assert decision["outcome"] == "worse"
    assert decision["becomes_champion"] is False
    assert decision["ci_high"] < 0
    assert decision["champion_score"] == pytest.approx(selection_score(metrics))
    record_champion(run_copy.runs_dir, decision)
    assert champion_run_id(run_copy.runs_dir, DATASET) == run_copy.run_dir.name


def test_champion_answers_made_in_a_cv_worker_decide_alike(
    run_copy: TrainedRun, tmp_path: Path
) -> None:
    """The training flow has CV workers load and run the champion and make the model file
    (WorkerWork): the same decision as in-process, and a damaged champion's error comes back
    from its worker as a value, without ending the pool and the model file's job with it."""
    crown_copy(run_copy)
    predictions, X_test = recorded_test_rows(run_copy)
    metrics = json.loads((run_copy.run_dir / "metrics.json").read_text())
    champion = run_copy.run_dir.name

    def judged(answers: Any = None) -> dict[str, Any]:
        return judge_against_champion(
            run_copy.runs_dir,
            DATASET,
            "tiny-next",
            metrics,
            predictions,
            X_test,
            seed=0,
            answers=answers,
        )

    new_model = DummyClassifier().fit(X_test, predictions["y_true"])

    def worker_work() -> WorkerWork:
        answers = start_in_worker(
            champion_answers_or_error, run_copy.runs_dir, champion, X_test, n_jobs=2
        )
        content = start_in_worker(model_file_bytes, new_model, n_jobs=2)
        return WorkerWork(champion=champion, champion_answers=answers, model_file_bytes=content)

    work = worker_work()
    made_there = judged(work.answers(run_copy.runs_dir, X_test))
    assert made_there == judged() and made_there["compared_with"] == champion
    assert work.model_file()  # taken, as the run takes every result (a dropped job ends the pool)
    run_copy.model_path.write_bytes(run_copy.model_path.read_bytes()[:-10])
    work = worker_work()
    damaged = judged(work.answers(run_copy.runs_dir, X_test))
    assert damaged["outcome"] == "not-comparable" and "sha256" in damaged["reason"]
    saved = save_model(new_model, tmp_path / "best.skops", work.model_file())
    assert (load_skops(saved).predict(X_test) == new_model.predict(X_test)).all()
    release_worker_pool()


def test_a_damaged_champion_is_kept_and_a_vanished_one_replaced(run_copy: TrainedRun) -> None:
    crown_copy(run_copy)
    predictions, X_test = recorded_test_rows(run_copy)
    metrics = json.loads((run_copy.run_dir / "metrics.json").read_text())
    run_copy.model_path.write_bytes(run_copy.model_path.read_bytes()[:-10])
    damaged = judge_against_champion(
        run_copy.runs_dir, DATASET, "tiny-next", metrics, predictions, X_test, seed=0
    )
    assert damaged["outcome"] == "not-comparable" and not damaged["becomes_champion"]
    assert "sha256" in damaged["reason"]
    shutil.rmtree(run_copy.run_dir)
    vanished = judge_against_champion(
        run_copy.runs_dir, DATASET, "tiny-next", metrics, predictions, X_test, seed=0
    )
    assert vanished["becomes_champion"] and "no longer exists" in vanished["reason"]
    record_champion(run_copy.runs_dir, vanished)
    assert champion_run_id(run_copy.runs_dir, DATASET) == "tiny-next"


def test_a_broken_registry_is_named_and_does_not_sink_a_run(run_copy: TrainedRun) -> None:
    (run_copy.runs_dir / REGISTRY_FILE).write_text("{not json")
    with pytest.raises(RegistryError, match=REGISTRY_FILE):
        read_registry(run_copy.runs_dir)
    predictions, X_test = recorded_test_rows(run_copy)
    metrics = json.loads((run_copy.run_dir / "metrics.json").read_text())
    decision = judge_against_champion(
        run_copy.runs_dir, DATASET, "tiny-next", metrics, predictions, X_test, seed=0
    )
    assert decision["outcome"] == "not-comparable" and not decision["becomes_champion"]
    assert record_champion(run_copy.runs_dir, decision) == {**decision, "registry": "unchanged"}


def test_a_second_identical_run_keeps_the_champion_and_promote_overrides(
    run_copy: TrainedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    crown_copy(run_copy)
    second = train_tiny(run_copy.data, run_copy.runs_dir)
    decision = json.loads((second / "champion.json").read_text())
    assert decision["compared_with"] == run_copy.run_dir.name
    assert decision["outcome"] == "within-noise"
    assert "note" not in decision  # same data, seed and test share: the same test rows
    assert decision["difference"] == 0.0
    assert champion_run_id(run_copy.runs_dir, DATASET) == run_copy.run_dir.name

    staging = start_run(run_copy.runs_dir, DATASET)  # a crashed run leaves only this
    second_start = json.loads((second / "manifest.json").read_text())["started_at"]
    later = (datetime.fromisoformat(second_start) + timedelta(seconds=1)).isoformat()
    failed = start_run(run_copy.runs_dir, DATASET)
    fail_run(
        failed,
        {"run_id": failed.run_id, "started_at": later, "config": {"name": DATASET}},
        RuntimeError("boom"),
    )
    rows = list_runs(run_copy.runs_dir)
    assert [r["run_id"] for r in rows] == [failed.run_id, second.name, run_copy.run_dir.name]
    assert staging.staging.is_dir()
    assert [r["champion"] for r in rows] == [False, False, True]
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "boom"

    assert main(["promote", second.name, "--runs-dir", str(run_copy.runs_dir)]) == 0
    assert champion_run_id(run_copy.runs_dir, DATASET) == second.name
    assert "now the champion" in capsys.readouterr().out
    history = read_registry(run_copy.runs_dir)["history"]
    assert history[-1]["replaced"] == run_copy.run_dir.name
    assert main(["runs", "--runs-dir", str(run_copy.runs_dir)]) == 0
    listing = capsys.readouterr().out
    assert listing.index(failed.run_id) < listing.index(second.name)
    assert "boom" in listing
    assert main(["promote", failed.run_id, "--runs-dir", str(run_copy.runs_dir)]) == 2
    assert "did not complete" in capsys.readouterr().err
    assert (run_copy.runs_dir / REGISTRY_FILE).is_file()
