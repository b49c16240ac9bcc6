"""Nothing lost: a run appears whole or not at all, a failed run says why, runs never collide,
one failing model family does not sink the others, and file-touching tasks retry safely."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psutil
import pytest
from prefect import flow

from flows.cli.main import USER_ERROR_EXIT, main
from flows.runtime import TrainParameters
from flows.train import train
from tasks.data.read import LoadedTable, read_table
from tasks.errors import AllFamiliesFailed, DataError, StorageError
from tasks.run.outputs import TrainingOutputs
from tasks.run.rundir import RunDir
from tasks.serving.registry import LOCK_FILE
from tasks.steps import load_data
from tests.conftest import PROJECT_ROOT, make_frame
from tests.filesystems import fill_up, read_only_disk, small_disk

# Only a safety net for a hung subprocess; no test asserts how long anything takes.
SUBPROCESS_DEADLINE_SECONDS = 300


def visible_runs(runs_dir: Path) -> list[Path]:
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def partial_runs(runs_dir: Path) -> list[Path]:
    return sorted(runs_dir.glob(".*.partial"))


def train_in_process(tmp_path: Path, *overrides: str) -> Path:
    data = tmp_path / "data.csv"
    make_frame(80).to_csv(data, index=False)
    params = TrainParameters(
        data=str(data),
        target="label",
        overrides=[f"runs_dir={tmp_path / 'runs'}", "split.cv_folds=2", *overrides],
    )
    return Path(train(params))


def train_command(data: Path, runs_dir: Path, *overrides: str) -> list[str]:
    sets = [f"--set={item}" for item in (f"runs_dir={runs_dir}", "split.cv_folds=2", *overrides)]
    command = [sys.executable, "-m", "flows.cli.main", "train", "--data", str(data)]
    return [*command, "--target", "label", *sets]


def start_train(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A new session: the run and its CV workers are one process group (the temporary Prefect
    server it may start runs in a session of its own)."""
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def started_by(pid: int) -> list[psutil.Process]:
    """The processes that name `pid` as the command they serve (its temporary Prefect server)."""
    marker = ["--parent", str(pid)]
    found = []
    for candidate in psutil.process_iter(["cmdline"]):
        line = candidate.info["cmdline"] or []
        if any(line[i : i + 2] == marker for i in range(len(line) - 1)):
            found.append(candidate)
    return found


def stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_manifest_in_staging(runs_dir: Path, process: subprocess.Popen[bytes]) -> Path:
    """The staging directory once the run has written its first manifest (mid-run)."""
    deadline = time.monotonic() + SUBPROCESS_DEADLINE_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        found = list(runs_dir.glob(".*.partial/manifest.json"))
        if found:
            return found[0].parent
        time.sleep(0.05)
    raise AssertionError(f"no run started: {process.communicate()[1].decode()[-2000:]}")


@pytest.mark.e2e
def test_kill_9_mid_run_leaves_nothing_that_looks_complete(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data, runs_dir = tmp_path / "data.csv", tmp_path / "runs"
    make_frame(200).to_csv(data, index=False)
    process = start_train(train_command(data, runs_dir, "models=[random_forest]"), cli_env)
    try:
        staging = wait_for_manifest_in_staging(runs_dir, process)
        started_by_run = started_by(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL  # killed mid-run, not finished
    finally:
        stop_group(process)
    # Its temporary Prefect server is outside the group: it notices and stops itself.
    assert [p.info["cmdline"] for p in started_by_run] != []
    _, alive = psutil.wait_procs(started_by_run, timeout=20)
    assert alive == [], [p.cmdline() for p in alive]
    assert visible_runs(runs_dir) == []
    assert partial_runs(runs_dir) == [staging]
    manifest = json.loads((staging / "manifest.json").read_text())
    assert manifest["status"] == "running"
    assert not (staging / "metrics.json").exists()


@pytest.mark.e2e
def test_two_runs_started_together_are_two_complete_runs(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data, runs_dir = tmp_path / "data.csv", tmp_path / "runs"
    make_frame(80).to_csv(data, index=False)
    command = train_command(data, runs_dir, "models=[logistic_regression]")
    processes = [start_train(command, cli_env) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=SUBPROCESS_DEADLINE_SECONDS) for p in processes]
    finally:
        for process in processes:
            stop_group(process)
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
    runs = visible_runs(runs_dir)
    assert len(runs) == 2
    for run in runs:
        assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
        assert (run / "metrics.json").is_file()
    assert partial_runs(runs_dir) == []


def test_a_failed_run_is_in_place_with_its_error(tmp_path: Path, prefect_harness: None) -> None:
    data = tmp_path / "data.csv"
    make_frame(80).assign(label="no").to_csv(data, index=False)
    params = TrainParameters(
        data=str(data), target="label", overrides=[f"runs_dir={tmp_path / 'runs'}"]
    )
    with pytest.raises(DataError, match="single class"):
        train(params)
    (run,) = visible_runs(tmp_path / "runs")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error_type"] == "DataError"
    assert "Target column 'label' has a single class ('no'); need two." in manifest["error"]
    assert partial_runs(tmp_path / "runs") == []


def test_a_family_whose_fit_raises_is_recorded_and_the_others_go_on(
    tmp_path: Path, prefect_harness: None
) -> None:
    run = train_in_process(
        tmp_path,
        "models=[logistic_regression, decision_tree]",
        "grids.logistic_regression.C=[-1.0]",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    status = {family["family"]: family for family in metrics["families"]}
    assert status["logistic_regression"]["status"] == "failed"
    error = status["logistic_regression"]["error"]
    assert error.startswith("InvalidParameterError: The 'C' parameter of LogisticRegression")
    assert "Traceback" not in error  # one line, not sklearn's embedded tracebacks
    assert status["decision_tree"]["status"] == "completed"
    assert metrics["best_model"]["family"] == "decision_tree"
    leaderboard = json.loads((run / "leaderboard.json").read_text())
    assert [row["status"] for row in leaderboard] == ["completed", "failed"]
    assert leaderboard[1]["family"] == "logistic_regression"
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"


def test_the_run_fails_only_when_every_family_fails(tmp_path: Path, prefect_harness: None) -> None:
    with pytest.raises(AllFamiliesFailed, match="Every model family failed"):
        train_in_process(
            tmp_path,
            "models=[logistic_regression, decision_tree]",
            "grids.logistic_regression.C=[-1.0]",
            "grids.decision_tree.max_depth=[-3]",
        )
    (run,) = visible_runs(tmp_path / "runs")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "logistic_regression: InvalidParameterError: The 'C' parameter" in manifest["error"]
    assert "decision_tree: InvalidParameterError: The 'max_depth' parameter" in manifest["error"]


@flow
def load_in_a_flow(path: Path) -> LoadedTable:
    return load_data(path)


def test_a_retried_load_gives_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    path = tmp_path / "data.csv"
    make_frame(40).to_csv(path, index=False)
    attempts: list[Path] = []

    def flaky_read(file: Path) -> object:
        attempts.append(file)
        if len(attempts) == 1:
            raise OSError("the network share went away")
        return read_table(file)

    monkeypatch.setattr("tasks.steps.read_table", flaky_read)
    table = load_in_a_flow(path)
    direct = read_table(path)
    assert len(attempts) == 2
    assert table.sha256 == direct.sha256
    pd.testing.assert_frame_equal(table.frame, direct.frame)


def test_a_bad_file_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    attempts: list[Path] = []

    def refuse(file: Path) -> object:
        attempts.append(file)
        raise DataError(f"File '{file}' is empty.")

    monkeypatch.setattr("tasks.steps.read_table", refuse)
    with pytest.raises(DataError, match="is empty"):
        load_in_a_flow(tmp_path / "empty.csv")
    assert len(attempts) == 1


@contextmanager
def registry_held(runs_dir: Path) -> Iterator[None]:
    """Hold the champion registry's lock, as a slow run finishing at the same moment would."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    with (runs_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def wait_for_published_runs(
    runs_dir: Path, processes: list[subprocess.Popen[bytes]], count: int
) -> list[Path]:
    """The runs once `count` of them are in place with their champion.json (the processes are
    then waiting for the registry's lock)."""
    deadline = time.monotonic() + SUBPROCESS_DEADLINE_SECONDS
    while time.monotonic() < deadline and all(p.poll() is None for p in processes):
        published = [run for run in visible_runs(runs_dir) if (run / "champion.json").is_file()]
        if len(published) == count:
            return published
        time.sleep(0.1)
    errors = [p.communicate()[1].decode()[-2000:] for p in processes if p.poll() is not None]
    raise AssertionError(f"the runs did not reach the registry: {errors}")


def champion_claims(run: Path) -> list[bool]:
    """Whether champion.json, the manifest and the report each say this run became champion."""
    decision = json.loads((run / "champion.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    report = (run / "report.html").read_text()
    return [
        decision["becomes_champion"],
        manifest["champion"]["becomes_champion"],
        "<b>Becomes champion</b>" in report,
    ]


@pytest.mark.e2e
def test_two_runs_finishing_together_only_the_registrys_winner_claims_the_title(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data, runs_dir = tmp_path / "data.csv", tmp_path / "runs"
    make_frame(80).to_csv(data, index=False)
    command = train_command(data, runs_dir, "models=[logistic_regression]", "name=tiny")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with registry_held(runs_dir):
            wide = {**cli_env, "COLUMNS": "500"}  # run paths printed on one line
            processes = [start_train(command, wide) for _ in range(2)]
            runs = wait_for_published_runs(runs_dir, processes, 2)
            for run in runs:  # both judged themselves the first champion; neither claims it yet
                decision = json.loads((run / "champion.json").read_text())
                assert decision["outcome"] == "first-champion"
                assert decision["registry"] == "pending"
                assert champion_claims(run) == [False, False, False]
        outputs = [p.communicate(timeout=SUBPROCESS_DEADLINE_SECONDS) for p in processes]
    finally:
        for process in processes:
            stop_group(process)
    said = {}
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
        text = " ".join(out.decode().split())
        run_id = Path(text.rsplit("Run directory: ", 1)[1].split()[0]).name
        said[run_id] = "Champion of 'tiny': this run" in text
    registry = json.loads((runs_dir / "registry.json").read_text())
    winner = registry["champions"]["tiny"]["run_id"]
    assert said == {run.name: run.name == winner for run in runs}
    for run in runs:
        expected = run.name == winner
        assert champion_claims(run) == [expected] * 3
    (loser,) = [run for run in runs if run.name != winner]
    decision = json.loads((loser / "champion.json").read_text())
    assert decision["outcome"] == "champion-changed-meanwhile"
    assert winner in decision["reason"]
    assert [h["run_id"] for h in registry["history"]] == [winner]


def tabpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, on a wide terminal (tables unwrapped)."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli.main", *args],
        cwd=PROJECT_ROOT,
        env={**env, "COLUMNS": "500"},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_DEADLINE_SECONDS,
    )


@pytest.mark.e2e
def test_a_run_killed_before_the_registry_write_never_claims_the_title(
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    data, runs_dir = tmp_path / "data.csv", tmp_path / "runs"
    make_frame(80).to_csv(data, index=False)
    command = train_command(data, runs_dir, "models=[logistic_regression]", "name=tiny")
    with registry_held(runs_dir):
        process = start_train(command, cli_env)
        try:
            (run,) = wait_for_published_runs(runs_dir, [process], 1)
            os.killpg(process.pid, signal.SIGKILL)  # after the rename, before the registry write
            assert process.wait() == -signal.SIGKILL
        finally:
            stop_group(process)
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    assert champion_claims(run) == [False, False, False]
    assert not (runs_dir / "registry.json").exists()

    listing = tabpipe(cli_env, "runs", "--runs-dir", str(runs_dir))
    assert listing.returncode == 0
    assert "champion decision never recorded" in " ".join(listing.stdout.split())
    scored = tabpipe(
        cli_env,
        "predict", "--model", "champion:tiny", "--data", str(data),
        "--out", str(tmp_path / "out.csv"), "--runs-dir", str(runs_dir),
    )  # fmt: skip
    assert scored.returncode == 2 and "No champion for 'tiny'" in scored.stderr

    check = tabpipe(cli_env, "runs", "--check", "--runs-dir", str(runs_dir))
    assert check.returncode == 1
    assert "stopped before the champion registry recorded it" in " ".join(check.stdout.split())
    repaired = tabpipe(cli_env, "runs", "--check", "--repair", "--runs-dir", str(runs_dir))
    assert repaired.returncode == 0
    decision = json.loads((run / "champion.json").read_text())
    assert (decision["registry"], decision["becomes_champion"]) == ("not-recorded", False)
    assert tabpipe(cli_env, "runs", "--check", "--runs-dir", str(runs_dir)).returncode == 0


def looks_complete(runs_dir: Path) -> list[Path]:
    """Visible runs whose manifest says completed."""
    return [
        run
        for run in visible_runs(runs_dir)
        if json.loads((run / "manifest.json").read_text()).get("status") == "completed"
    ]


def train_cli_on(tmp_path: Path, runs_dir: Path) -> list[str]:
    data = tmp_path / "data.csv"
    make_frame(80).to_csv(data, index=False)
    sets = [f"runs_dir={runs_dir}", "split.cv_folds=2", "models=[logistic_regression]"]
    return ["train", "--data", str(data), "--target", "label", *[f"--set={s}" for s in sets]]


def test_a_full_disk_before_the_run_is_one_sentence_naming_the_path(
    tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill_up(disk)
        assert main(train_cli_on(tmp_path, disk / "runs")) == USER_ERROR_EXIT
        error = " ".join(capsys.readouterr().err.split())
        assert error.startswith("error: No space left on the disk holding")
        assert str(disk / "runs") in error and "Traceback" not in error
        assert not (disk / "runs").exists() or list((disk / "runs").iterdir()) == []


def test_a_read_only_runs_directory_is_one_sentence(
    tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with read_only_disk(tmp_path / "ro") as read_only:
        assert main(train_cli_on(tmp_path, read_only / "runs")) == USER_ERROR_EXIT
        error = " ".join(capsys.readouterr().err.split())
        assert f"'{read_only / 'runs'}' is not writable" in error and "read-only" in error


def test_a_disk_that_fills_while_the_run_writes_leaves_nothing_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from tasks.run import outputs

    original = outputs.write_training_files

    def fill_then_write(run: RunDir, training: TrainingOutputs) -> dict[str, Path]:
        fill_up(run.staging)  # another process takes the last free byte
        return original(run, training)

    monkeypatch.setattr(outputs, "write_training_files", fill_then_write)
    with small_disk(tmp_path / "disk", "2m") as disk:
        runs_dir = disk / "runs"
        with pytest.raises(StorageError, match="No space left on the disk holding") as raised:
            train_in_process(tmp_path, f"runs_dir={runs_dir}", "models=[logistic_regression]")
        assert looks_complete(runs_dir) == []
        (unfinished,) = partial_runs(runs_dir) or visible_runs(runs_dir)
        assert str(unfinished) in str(raised.value)  # the sentence says where the run is
        manifest = json.loads((unfinished / "manifest.json").read_text())
        assert manifest["status"] in ("running", "failed")


@pytest.mark.parametrize(
    ("code", "sentence"),
    [(errno.ENOSPC, "No space left on the disk holding"), (errno.EACCES, "No permission to write")],
)
def test_a_write_error_at_the_writer_marks_the_run_failed_with_one_sentence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_harness: None,
    code: int,
    sentence: str,
) -> None:
    def refused(run: RunDir, training: TrainingOutputs) -> dict[str, Path]:
        path = run.path("predictions.csv")
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr("tasks.run.outputs.write_training_files", refused)
    with pytest.raises(StorageError, match="The run is marked failed in") as raised:
        train_in_process(tmp_path, "models=[logistic_regression]")
    (run,) = visible_runs(tmp_path / "runs")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error_type"] == "StorageError"
    assert manifest["error"].startswith(sentence)
    assert "predictions.csv" in manifest["error"]
    assert f"'{run}'" in str(raised.value)
    assert partial_runs(tmp_path / "runs") == []
