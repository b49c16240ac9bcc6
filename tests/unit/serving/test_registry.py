"""The champion registry: validated on read, decided under its lock, checked and repaired."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flows.cli.main import USER_ERROR_EXIT, main
from tasks.errors import RegistryError
from tasks.run.outputs import rewrite_champion_decision
from tasks.serving.api import runs_index
from tasks.serving.registry import (
    REGISTRY_FILE,
    champion_run_id,
    list_runs,
    pending_decision,
    read_registry,
    record_champion,
)
from tasks.serving.registry_check import check_registry, repair_registry
from tests.trained_run import DATASET, TrainedRun, train_tiny


def first_champion(run_id: str) -> dict[str, Any]:
    return {
        "dataset": DATASET,
        "run_id": run_id,
        "metric": "roc_auc",
        "becomes_champion": True,
        "outcome": "first-champion",
        "compared_with": None,
        "reason": "the first good run of this dataset.",
    }


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


@pytest.mark.parametrize(
    ("content", "broken_key"),
    [
        ('{"champions": {}, "history": "x"}', "'history': Input should be a valid list"),
        ('{"champions": {"tiny": {"run_id": 5}}}', "'champions.tiny.run_id'"),
        ("[]", "'top level'"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_a_damaged_registry_is_one_sentence_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, broken_key: str
) -> None:
    (tmp_path / REGISTRY_FILE).write_text(content)
    with pytest.raises(RegistryError, match=broken_key):
        read_registry(tmp_path)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == USER_ERROR_EXIT
    error = flat(capsys.readouterr().err)
    assert f"Registry '{tmp_path / REGISTRY_FILE}'" in error and "Traceback" not in error
    assert "tabpipe runs --check --repair" in error


def test_training_goes_on_without_a_comparison_when_the_registry_is_damaged(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    damaged = '{"champions": {}, "history": "x"}'
    (runs_dir / REGISTRY_FILE).write_text(damaged)
    run = train_tiny(trained_run.data, runs_dir)
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    decision = json.loads((run / "champion.json").read_text())
    assert decision["becomes_champion"] is False
    assert decision["outcome"] == "not-comparable"
    assert decision["reason"].startswith("no champion comparison: Registry")
    assert (runs_dir / REGISTRY_FILE).read_text() == damaged  # never overwritten


def test_only_the_first_of_two_simultaneous_first_champions_is_crowned(tmp_path: Path) -> None:
    first = record_champion(tmp_path, first_champion("tiny-a"))
    second = record_champion(tmp_path, first_champion("tiny-b"))
    assert (first["becomes_champion"], first["registry"]) == (True, "recorded")
    assert (second["becomes_champion"], second["registry"]) == (False, "unchanged")
    assert second["outcome"] == "champion-changed-meanwhile"
    assert "run 'tiny-a' became champion" in second["reason"]
    assert champion_run_id(tmp_path, DATASET) == "tiny-a"


def test_a_pending_run_is_never_champion_and_check_repairs_it(
    run_copy: TrainedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state a kill -9 between the run's rename and the registry write leaves."""
    pending = pending_decision(first_champion(run_copy.run_dir.name))
    assert pending["becomes_champion"] is False and pending["registry"] == "pending"
    rewrite_champion_decision(run_copy.run_dir, pending)
    (row,) = list_runs(run_copy.runs_dir)
    assert row["champion"] is False and "never recorded" in row["champion_note"]
    assert "Champion decision pending" in (run_copy.run_dir / "report.html").read_text()

    args = ["runs", "--check", "--runs-dir", str(run_copy.runs_dir)]
    assert main(args) == 1
    assert "stopped before the champion registry recorded it" in flat(capsys.readouterr().out)
    assert main([*args, "--repair"]) == 0
    decision = json.loads((run_copy.run_dir / "champion.json").read_text())
    assert (decision["registry"], decision["becomes_champion"]) == ("not-recorded", False)
    manifest = json.loads((run_copy.run_dir / "manifest.json").read_text())
    assert manifest["champion"] == decision
    assert "Champion unchanged" in (run_copy.run_dir / "report.html").read_text()
    assert main(args) == 0


def test_a_pending_run_the_registry_did_crown_is_marked_recorded(run_copy: TrainedRun) -> None:
    """A kill after the registry write, before the run's files said so."""
    judged = first_champion(run_copy.run_dir.name)
    record_champion(run_copy.runs_dir, judged)
    rewrite_champion_decision(run_copy.run_dir, pending_decision(judged))
    (finding,) = check_registry(run_copy.runs_dir)
    assert "the registry did record it" in finding.problem
    repair_registry(run_copy.runs_dir)
    decision = json.loads((run_copy.run_dir / "champion.json").read_text())
    assert decision["becomes_champion"] is True and decision["registry"] == "recorded"
    assert decision["reason"] == judged["reason"]
    assert check_registry(run_copy.runs_dir) == []


def test_a_champion_that_vanished_gives_way_to_the_previous_one(run_copy: TrainedRun) -> None:
    record_champion(run_copy.runs_dir, first_champion(run_copy.run_dir.name))
    gone = {**first_champion("tiny-gone"), "compared_with": run_copy.run_dir.name}
    record_champion(run_copy.runs_dir, gone)
    (finding,) = check_registry(run_copy.runs_dir)
    assert "'tiny-gone' as champion, but that run does not exist" in finding.problem
    repair_registry(run_copy.runs_dir)
    assert champion_run_id(run_copy.runs_dir, DATASET) == run_copy.run_dir.name


def test_a_damaged_registry_is_set_aside_and_rebuilt_from_the_runs(
    run_copy: TrainedRun,
) -> None:
    registry = run_copy.runs_dir / REGISTRY_FILE
    registry.write_text('{"champions": {}, "history": "x"}')
    (finding,) = check_registry(run_copy.runs_dir)
    assert finding.subject == str(registry) and "is damaged" in finding.problem
    repair_registry(run_copy.runs_dir)
    (aside,) = run_copy.runs_dir.glob(f"{REGISTRY_FILE}.damaged-*")
    assert aside.read_text() == '{"champions": {}, "history": "x"}'  # nothing lost
    assert champion_run_id(run_copy.runs_dir, DATASET) == run_copy.run_dir.name
    assert check_registry(run_copy.runs_dir) == []


def test_the_api_runs_page_says_a_damaged_registry_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / REGISTRY_FILE).write_text('{"champions": {}, "history": "x"}')
    page = runs_index(tmp_path)
    assert f"Registry &#x27;{tmp_path / REGISTRY_FILE}&#x27; is damaged" in page


def test_a_run_crowned_but_killed_before_saying_so_is_listed_as_champion(
    run_copy: TrainedRun,
) -> None:
    judged = first_champion(run_copy.run_dir.name)
    record_champion(run_copy.runs_dir, judged)
    rewrite_champion_decision(run_copy.run_dir, pending_decision(judged))
    (row,) = list_runs(run_copy.runs_dir)
    assert row["champion"] is True  # the registry's word
    assert "still says pending" in row["champion_note"]
