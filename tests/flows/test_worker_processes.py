"""A small search (few rows, few fits) runs in the task threads; any other uses the pool, which
the command starts early when it can tell."""

from __future__ import annotations

import gzip
import io
import os
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pandas as pd
import psutil
import pytest
from imblearn.pipeline import Pipeline
from PIL import Image
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from flows.runtime import available_cores
from flows.train import (
    audit_refits_for,
    expected_worker_processes,
    start_audit_refits,
    worker_processes,
)
from flows.worker_work import WorkerWork, start_worker_work
from tasks.config import build_config
from tasks.data.header import has_rows
from tasks.evaluation.evaluate import predict_test
from tasks.evaluation.explain import explain
from tasks.memory import return_freed_memory
from tasks.model_selection.audit import INPUT_AUDIT, FitAudit, StartedFoldRefits
from tasks.model_selection.parallel import (
    POOL_MIN_FITS,
    POOL_MIN_ROWS,
    WORKER_NICENESS,
    WorkerJob,
    begin_worker_job,
    local_pool_is_running,
    release_worker_pool,
    release_worker_pool_after,
    start_in_worker,
    start_worker_pool,
    surely_uses_pool,
)
from tasks.model_selection.pipeline import candidate_count, default_families
from tasks.model_selection.search import FamilyResult, build_scorer
from tasks.run.model_io import load_skops, model_file_bytes, save_model
from tasks.run.outputs import cv_results_of
from tasks.run.plots import (
    in_report_order,
    prediction_plots,
    result_plots,
    search_and_data_plots,
)
from tasks.steps import explanation_inputs


def test_a_tiny_search_stays_in_threads_and_the_default_one_uses_the_cores() -> None:
    profile = SimpleNamespace(task="binary", roughly_balanced=False)
    tiny = build_config(
        {
            "data": "d.csv",
            "target": "y",
            "models": ["logistic_regression", "hist_gradient_boosting"],
            "grids": {"logistic_regression": {"C": [0.1, 1.0]}, "hist_gradient_boosting": {}},
        },
        "test",
    )
    # 2 + 1 candidates (class weights: one rebalancing choice each), 3 folds: 9 fits.
    assert (
        candidate_count(
            "logistic_regression",
            "binary",
            grids=tiny.grids,
            rebalance=list(tiny.rebalance),
            roughly_balanced=False,
        )
        == 2
    )
    assert worker_processes(tiny, profile, list(tiny.models), KFold(3), 400) == 1
    assert (
        worker_processes(tiny, profile, list(tiny.models), KFold(3), 100_000) == available_cores()
    )
    default = build_config({"data": "d.csv", "target": "y"}, "test")
    families = default_families("binary")
    fits = 5 * sum(
        candidate_count(f, "binary", grids={}, rebalance=["auto"], roughly_balanced=False)
        for f in families
    )
    assert fits >= POOL_MIN_FITS
    assert worker_processes(default, profile, families, KFold(5), 300) == available_cores()
    assert (
        worker_processes(default.model_copy(update={"n_jobs": 3}), profile, families, KFold(5), 300)
        == 3
    )


def test_the_pool_is_expected_before_the_data_is_read_as_the_search_will_decide(
    tmp_path: Path,
) -> None:
    small = tmp_path / "small.csv"
    small.write_text("x,y\n" + "1,0\n" * 300)
    large = tmp_path / "large.csv"
    large.write_text("x,y\n" + "1,0\n" * POOL_MIN_ROWS)
    tiny = {
        "target": "y",
        "models": ["logistic_regression"],
        "grids": {"logistic_regression": {"C": [0.1, 1.0]}},
    }
    assert expected_worker_processes(build_config({**tiny, "data": str(small)}, "t")) == 1
    assert (
        expected_worker_processes(build_config({**tiny, "data": str(large)}, "t"))
        == available_cores()
    )
    zero_config = build_config({"data": str(small), "target": "y"}, "t")
    assert expected_worker_processes(zero_config) == available_cores()


def test_row_counts_are_told_cheaply_or_not_at_all(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n" + "1,2\n" * 10)
    assert has_rows(csv, 10) and not has_rows(csv, 11)
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"a": range(10)}).to_parquet(parquet)
    assert has_rows(parquet, 10) and not has_rows(parquet, 11)
    compressed = tmp_path / "t.csv.gz"
    compressed.write_bytes(gzip.compress(csv.read_bytes()))
    assert not has_rows(compressed, 1)  # unknown without decompressing: guessed small


def test_a_started_pool_is_the_one_the_search_uses() -> None:
    start_worker_pool(2)
    first = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(20)))
    modules = joblib.Parallel(n_jobs=2)(
        joblib.delayed(lambda: "tasks.model_selection.prepared" in sys.modules)() for _ in range(4)
    )
    start_worker_pool(2)  # again: still the same processes
    again = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(20)))
    assert first <= again and len(again) <= 2 and os.getpid() not in again
    assert all(modules)
    # The run's own process comes first on a busy machine; warmed twice, lowered once.
    niceness = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.nice)(0) for _ in range(8)))
    assert niceness == {min(os.nice(0) + WORKER_NICENESS, 19)}


def test_a_released_pool_ends_its_workers_and_a_later_search_starts_a_new_one() -> None:
    first = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(8)))
    release_worker_pool()
    gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in first], timeout=20)
    assert not alive and len(gone) == len(first)
    again = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(8)))
    assert again and not again & first and os.getpid() not in again
    release_worker_pool()
    release_worker_pool()  # nothing left to release: nothing happens


def test_a_job_in_a_worker_gives_its_value_error_and_warnings_then_the_pool_goes() -> None:
    start_worker_pool(2)
    assert local_pool_is_running()
    pid = start_in_worker(os.getpid, n_jobs=2)
    failing = start_in_worker(int, "not a number", n_jobs=2)
    warning = start_in_worker(warnings.warn, "careful", n_jobs=2)
    worker = pid.result()
    assert worker != os.getpid()
    # Asked for before the error: joblib ends the whole pool once an error is collected, and a
    # job still unfinished then is lost (flows/worker_work.py returns its errors as values).
    with pytest.warns(UserWarning, match="careful"):
        warning.result()
    with pytest.raises(ValueError, match="not a number"):
        failing.result()
    release_worker_pool_after([pid, failing, warning])
    deadline = time.monotonic() + 20
    while psutil.pid_exists(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(worker)
    assert not local_pool_is_running()


def test_the_model_file_made_in_a_worker_loads_as_the_model_without_its_row_ids(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    model = Pipeline([(INPUT_AUDIT, FitAudit()), ("model", LogisticRegression())]).fit(X, y)
    content = start_in_worker(model_file_bytes, model, n_jobs=2).result()
    release_worker_pool()
    loaded = load_skops(save_model(model, tmp_path / "best.skops", content))
    assert loaded.named_steps[INPUT_AUDIT].row_index_ is None
    assert model.named_steps[INPUT_AUDIT].row_index_ is not None  # the audit still reads them
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_without_a_pool_the_worker_work_stays_in_the_main_process() -> None:
    release_worker_pool()
    for n_jobs in (2, 1):
        work = start_worker_work(
            [],
            split=SimpleNamespace(),
            profile=SimpleNamespace(),
            metric="f1",
            config=SimpleNamespace(),  # type: ignore[arg-type]
            n_jobs=n_jobs,
        ).after_evaluation(
            SimpleNamespace(),  # type: ignore[arg-type]
            config=SimpleNamespace(),  # type: ignore[arg-type]
            scorer=None,
            n_jobs=n_jobs,
        )
        assert work.jobs() == [] and work.plots() is None and work.model_file() is None
        assert work.explains() is None  # the run explains in-process


def test_the_default_search_of_every_task_surely_uses_the_pool(tmp_path: Path) -> None:
    # surely_uses_pool's promise, which lets the command start the pool before scikit-learn loads
    smallest = build_config({"data": "d.csv", "target": "y", "split": {"cv_folds": 2}}, "t")
    for task in ("binary", "multiclass", "regression"):
        families = default_families(task)
        profile = SimpleNamespace(task=task, roughly_balanced=True)
        assert worker_processes(smallest, profile, families, KFold(2), 50) == available_cores()
    small = tmp_path / "small.csv"
    small.write_text("x,y\n" + "1,0\n" * 50)
    assert surely_uses_pool(default_search=True, data=small)
    assert not surely_uses_pool(default_search=False, data=small)


def test_the_audit_refits_start_early_only_in_the_pool_and_serve_only_their_family() -> None:
    """Started beside the winner's refit (flows/train.py); an ensemble is audited member by
    member later, and refits of a winner whose refit failed are not used for the next best."""
    pipeline = Pipeline([("model", DummyClassifier())])
    single = FamilyResult("logistic_regression", "completed", best_score=0.5, estimator=pipeline)
    split, folds = SimpleNamespace(), KFold(3)
    assert start_audit_refits([single], split, folds, n_jobs=1) is None
    ensemble = FamilyResult(
        "ensemble",
        "completed",
        best_score=0.9,
        estimator=VotingClassifier([("a", pipeline)]),
    )
    assert start_audit_refits([single, ensemble], split, folds, n_jobs=2) is None
    train, validation = np.arange(2), np.arange(2, 3)
    made = StartedFoldRefits(WorkerJob(iter([([pipeline], [])])), [(train, validation)])
    assert audit_refits_for(single, ("logistic_regression", made)) == [
        (pipeline, train, validation)
    ]
    assert audit_refits_for(single, ("hist_gradient_boosting", made)) is None
    assert audit_refits_for(single, None) is None


def first_round(result: FamilyResult, split: Any, profile: Any, config: Any) -> WorkerWork:
    """WorkerWork's first round for one family's search, in two workers, scored by PR-AUC."""
    return start_worker_work(
        [result],
        split=split,
        profile=profile,
        metric="average_precision",
        config=config,
        n_jobs=2,
    )


def test_the_workers_get_their_jobs_in_the_order_the_run_needs_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After the search: the search plots, then matplotlib for the other worker (both are idle
    then, so it lands there and no later plot imports it); once evaluated: the importance the
    run waits for first, then the champion's answers (needed only by the champion decision, after
    the importance), the prediction plots and the model file."""
    import flows.worker_work as worker_work

    sent: list[str] = []

    def recorded(function: Any, *args: Any, n_jobs: int, **kwargs: Any) -> WorkerJob[Any]:
        sent.append(function.__name__)
        return WorkerJob(iter([(None, [])]))

    monkeypatch.setattr(worker_work, "start_in_worker", recorded)
    monkeypatch.setattr(worker_work, "local_pool_is_running", lambda: True)
    monkeypatch.setattr(worker_work, "champion_run_id", lambda runs_dir, dataset: "champion-run")
    (tmp_path / "champion-run").mkdir()
    result = FamilyResult("logistic_regression", "ok", best_score=0.8, best_std=0.01, candidates=[])
    profile = SimpleNamespace(task="binary", classes=["no", "yes"], positive_label="yes")
    split = SimpleNamespace(
        y_train=pd.Series(["no", "yes"]),
        X_test=pd.DataFrame({"a": [1.0]}),
        y_test=pd.Series(["yes"]),
    )
    config = SimpleNamespace(seed=3, runs_dir=tmp_path, dataset_name="d")
    work = first_round(result, split, profile, config)
    assert sent == ["search_and_data_plots", "import_modules"]
    predictions = pd.DataFrame(
        {"y_true": ["yes"], "y_pred": ["yes"], "proba_no": [0.2], "proba_yes": [0.8]}
    )
    evidence = SimpleNamespace(model=None, split=split, profile=profile, predictions=predictions)
    work.after_evaluation(evidence, config=config, scorer=None, n_jobs=2)  # type: ignore[arg-type]
    assert sent[2:] == [
        "importance_part",
        "importance_part",
        "champion_answers_or_error",
        "prediction_plots",
        "model_file_bytes",
    ]


def freed_then_job_begins() -> tuple[float, float]:
    """In a CV worker: the RSS (MB) after a job freed 128 MB of small arrays, and once the next
    job began (one array kept last, so glibc cannot hand the rest back by itself)."""
    process = psutil.Process()
    arrays = [np.ones(8192) for _ in range(2048)]  # 64 kB each: glibc's heap, not mmap
    kept = arrays[-1]
    del arrays
    freed = process.memory_info().rss / 2**20
    begin_worker_job()
    began = process.memory_info().rss / 2**20
    assert kept.sum() == 8192
    return freed, began


def test_a_cv_workers_next_job_begins_with_the_memory_the_last_one_freed_handed_back() -> None:
    start_worker_pool(2)
    freed, began = start_in_worker(freed_then_job_begins, n_jobs=2).result()
    assert began < freed - 100
    release_worker_pool()


def test_freed_memory_goes_back_from_pyarrows_pool_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the search the run hands back what reading and validating freed: glibc's arenas
    and pyarrow's own pool, which keeps freed blocks for reuse (45 MB of a 100k-row read)."""
    import pyarrow

    released: list[str] = []
    pool = SimpleNamespace(release_unused=lambda: released.append("pool"))
    monkeypatch.setattr(pyarrow, "default_memory_pool", lambda: pool)
    return_freed_memory()
    assert released == ["pool"]


def test_the_work_done_in_workers_is_what_the_main_process_would_have_made(
    tmp_path: Path,
) -> None:
    """WorkerWork: the importance, every plot and the model file made in the CV workers are the
    ones the run makes in-process without a pool."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    y = pd.Series(np.where(X["a"] + rng.normal(scale=0.7, size=400) > 0.4, "yes", "no"))
    X_train, X_test, y_train, y_test = X[:300], X[300:], y[:300], y[300:]
    model = Pipeline([(INPUT_AUDIT, FitAudit()), ("model", LogisticRegression())])
    model.fit(X_train, y_train)
    split = SimpleNamespace(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test)
    profile = SimpleNamespace(
        task="binary",
        classes=["no", "yes"],
        positive_label="yes",
        class_counts={"no": int((y == "no").sum()), "yes": int((y == "yes").sum())},
        missing_per_column={"a": 0, "b": 4, "c": 0},
        n_rows=400,
        target="y",
    )
    predictions = predict_test(model, X_test, y_test)
    result = FamilyResult("logistic_regression", "ok", best_score=0.8, best_std=0.01, candidates=[])
    scorer = build_scorer("average_precision", "yes")
    config = SimpleNamespace(seed=3, runs_dir=tmp_path, dataset_name="d")
    start_worker_pool(2)
    evidence = SimpleNamespace(
        model=model,
        split=split,
        profile=profile,
        predictions=predictions,
        results=[result],
        metric="average_precision",
    )
    work = first_round(result, split, profile, config)
    assert len(work.jobs()) == 2 and work.champion is None  # no champion: no answers to make
    work = work.after_evaluation(
        evidence,  # type: ignore[arg-type]
        config=config,  # type: ignore[arg-type]
        scorer=scorer,
        n_jobs=2,
    )
    assert len(work.jobs()) == 6 and len(work.importance_parts) == 2  # one part per worker
    here = explain(model, **explanation_inputs(split, predictions, profile), scoring=scorer, seed=3)  # type: ignore[arg-type]
    there = work.explanations()
    pd.testing.assert_frame_equal(there.importance, here.importance)
    assert there.summary == here.summary
    drift = {"columns": [{"column": "b", "score": 1.5}, {"column": "c", "score": 0.2}]}
    work = work.with_result_plots(there, drift, n_jobs=2)
    drawn_there = work.plots()
    drawn_here = in_report_order(
        search_and_data_plots(cv_results_of([result]), "average_precision", profile, y_train),
        prediction_plots(predictions=predictions, profile=profile),
        result_plots(here.importance, drift),
    )
    assert drawn_there is not None and list(drawn_there) == list(drawn_here)
    assert {"calibration", "missing_values", "permutation_importance", "drift"} <= set(drawn_here)
    for name, png in drawn_here.items():
        assert np.array_equal(pixels(drawn_there[name]), pixels(png)), name
    loaded = load_skops(save_model(model, tmp_path / "best.skops", work.model_file()))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    release_worker_pool_after(work.jobs())


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))
