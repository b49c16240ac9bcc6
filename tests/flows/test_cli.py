"""Command-line conventions: --version, train --help with examples and the --set keys, runs
filtered by dataset as JSON, and the leaderboard readable at 80 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

import flows.cli.train as train_cli
from flows.cli.main import build_parser, main, tabpipe_version
from tasks.run.rundir import write_json


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"tabpipe {tabpipe_version()}"


def test_train_help_has_examples_and_every_set_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "tabpipe train --data my.csv --target churned" in text
    for key in ("split.cv_folds", "threshold.objective", "models", "schedule.cron", "schema"):
        assert key in text


def fake_run(runs_dir: Path, run_id: str, dataset: str) -> None:
    write_json(
        runs_dir / run_id / "manifest.json",
        {"status": "completed", "run_id": run_id, "started_at": f"2026-11-25T{run_id[-2:]}:00"},
    )
    write_json(
        runs_dir / run_id / "metrics.json",
        {
            "dataset": dataset,
            "selection_metric": "accuracy",
            "best_model": {"family": "knn"},
            "test_metrics": {"accuracy": 0.9},
        },
    )


def test_runs_of_one_dataset_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_run(tmp_path, "a-10", "penguins")
    fake_run(tmp_path, "b-11", "hitters")
    fake_run(tmp_path, "c-12", "penguins")
    assert main(["runs", "--runs-dir", str(tmp_path), "--dataset", "penguins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["run_id"] for row in rows] == ["c-12", "a-10"]
    assert {row["dataset"] for row in rows} == {"penguins"}


LEADERBOARD = [
    {
        "family": "hist_gradient_boosting",
        "status": "completed",
        "cv_score": "0.9805 ± 0.0075",
        "best_params": "rebalance=class_weight, model__learning_rate=0.05, "
        "model__max_leaf_nodes=15",
        "fit_seconds": 6.99,
    },
    {
        "family": "knn",
        "status": "completed",
        "cv_score": "0.9668 ± 0.0154",
        "best_params": "rebalance=random_under, model__n_neighbors=5",
        "fit_seconds": 3.21,
    },
]
METRICS = {"selection_metric": "f1_macro", "cv_folds": 5}


@pytest.mark.parametrize("width", [80, 120])
def test_leaderboard_fits_and_never_breaks_a_word(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    console = Console(width=width, record=True)
    monkeypatch.setattr(train_cli, "console", console)
    console.print(train_cli.leaderboard_table(METRICS, LEADERBOARD))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    for word in ("learning_rate=0.05", "max_leaf_nodes=15", "rebalance=random_under"):
        assert word in text  # whole, on one line
    assert "model__" not in text  # pipeline prefixes are abbreviated away


def test_history_lists_a_datasets_completed_runs_newest_first_with_intervals(
    tmp_path: Path,
) -> None:
    from flows.runtime import dataset_history

    fake_run(tmp_path, "a-10", "penguins")
    fake_run(tmp_path, "b-11", "hitters")
    fake_run(tmp_path, "c-12", "penguins")
    metrics_file = tmp_path / "c-12" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["test_metrics"]["intervals"] = {"metrics": {"accuracy": {"low": 0.8, "high": 0.95}}}
    write_json(metrics_file, metrics)
    rows = dataset_history(tmp_path, "penguins")
    assert [row["run"] for row in rows] == ["c-12", "a-10"]
    assert rows[0]["test metric"] == "accuracy 0.900 [0.800, 0.950]"
    assert rows[1]["test metric"] == "accuracy 0.900"
    assert rows[0]["best family"] == "knn"


def test_progress_names_the_stage_and_counts_families() -> None:
    import logging

    def record(**extra: object) -> logging.LogRecord:
        made = logging.LogRecord("tabpipe.progress", logging.INFO, "", 0, "", None, None)
        made.__dict__.update(extra)
        return made

    assert train_cli.stage_description(record(stage="load")) == ("load the data", 0, None)
    searching = record(stage="search", done=3, total=6, family="knn")
    assert train_cli.stage_description(searching) == ("search 3/6 families (last: knn)", 3, 6)
    assert train_cli.stage_description(record(stage="evaluate"))[0] == "evaluate on the test set"


def test_a_time_budget_counts_down_beside_the_bar() -> None:
    """search.time_budget: the bar shows the minutes and seconds left, and nothing without one."""
    import time

    from rich.progress import Progress

    progress = Progress()
    with_budget = progress.add_task("search", deadline=time.time() + 150.4)
    without = progress.add_task("load")
    column = train_cli.BudgetLeftColumn()
    shown = column.render(progress.tasks[with_budget]).plain
    assert shown in ("budget 2:30 left", "budget 2:29 left")
    assert column.render(progress.tasks[without]).plain == ""
    progress.update(with_budget, deadline=time.time() - 5)
    assert column.render(progress.tasks[with_budget]).plain == "budget 0:00 left"
