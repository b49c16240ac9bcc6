"""Stop means stop: a real `tabpipe train` in its own process group gets a real SIGINT (to the
group, as a terminal's Ctrl-C) or SIGTERM (to the process), and then nothing it started is left:
not the CV worker processes, not the temporary Prefect server, not the resource trackers. The run
is in place, marked failed with the signal's name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import (
    make_frame,
    shared_memory_left_by,
    start_training_in_own_group,
    stop_process,
)

pytestmark = pytest.mark.e2e

# Enough training rows for the CV to run in a pool of worker processes (flows/train.py).
ROWS = 9_000
STOP_SECONDS = 10
START_SECONDS = 240


def start_training(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    data = tmp_path / "big.csv"
    make_frame(n_rows=ROWS, seed=3).to_csv(data, index=False)
    return start_training_in_own_group(
        [
            "--data",
            str(data),
            "--target",
            "label",
            "--set",
            f"runs_dir={tmp_path / 'runs'}",
            "--set",
            "models=[random_forest, hist_gradient_boosting, logistic_regression]",
        ],
        env,
    )


def wait_for_workers(process: subprocess.Popen[str], runs_dir: Path) -> list[psutil.Process]:
    """Wait until the run is under way (its directory staged) with its CV worker processes up
    (the command starts them early); returns every descendant then."""
    deadline = time.monotonic() + START_SECONDS
    parent = psutil.Process(process.pid)
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        children = parent.children(recursive=True)
        workers = any("loky" in " ".join(child.cmdline()) for child in safe(children))
        if workers and list(runs_dir.glob("*/manifest.json")):
            return children
        time.sleep(0.5)
    stop_process(process)  # type: ignore[arg-type]
    pytest.fail("the search never started its CV worker processes")


def safe(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            process.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        alive.append(process)
    return alive


def still_running(processes: list[psutil.Process]) -> list[str]:
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.mark.parametrize(
    ("signal_number", "to_group", "exit_code"),
    [
        (signal.SIGINT, True, 130),
        (signal.SIGTERM, False, 143),
    ],
    ids=["sigint-to-group", "sigterm-to-process"],
)
def test_a_signal_stops_the_run_and_everything_it_started(
    tmp_path: Path,
    cli_env: dict[str, str],
    signal_number: signal.Signals,
    to_group: bool,
    exit_code: int,
) -> None:
    process = start_training(tmp_path, cli_env)
    descendants = wait_for_workers(process, tmp_path / "runs")
    if to_group:
        os.killpg(process.pid, signal_number)
    else:
        os.kill(process.pid, signal_number)
    try:
        _, stderr = process.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        stop_process(process)  # type: ignore[arg-type]
        pytest.fail(f"{signal_number.name} did not stop the run within {STOP_SECONDS} s")

    assert process.returncode == exit_code
    time.sleep(0.5)  # a SIGKILLed child is gone at once; give the kernel a moment to reap
    assert still_running(descendants) == []
    assert shared_memory_left_by(process.pid) == []
    assert [line for line in stderr.splitlines() if line.strip()] == [
        line for line in stderr.splitlines() if line.startswith(f"Stopped by {signal_number.name}")
    ], stderr
    runs = list((tmp_path / "runs").iterdir())
    assert [run.name.startswith(".") for run in runs] == [False]  # renamed into place
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"] == f"interrupted ({signal_number.name})"


# The temporary Prefect server polls its parent every second and shuts uvicorn down; a CV worker
# polls every second; resource trackers end when the last process holding their pipe is gone.
ORPHANS_GONE_SECONDS = 25


def test_sigkill_of_the_process_alone_leaves_nothing_behind(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # What the OOM killer does: SIGKILL to the tabpipe process only, no clean-up of its own.
    process = start_training(tmp_path, cli_env)
    descendants = wait_for_workers(process, tmp_path / "runs")
    assert len(descendants) >= 4  # CV workers, their resource tracker, the temporary server
    process.kill()
    process.wait(timeout=STOP_SECONDS)  # not communicate(): orphans would hold its pipes open
    deadline = time.monotonic() + ORPHANS_GONE_SECONDS
    while still_running(descendants) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert still_running(descendants) == []
    assert shared_memory_left_by(process.pid) == []  # unlinked by the orphaned resource tracker
    process.communicate(timeout=STOP_SECONDS)


SWALLOWED_BY_A_CALLBACK = """
import os, signal, sys, time, weakref
from flows.cli.stop import stoppable

class Thing:
    pass

def callback(reference):  # the signal's handler raises in here, where Python only prints
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)

with stoppable():
    thing = Thing()
    reference = weakref.ref(thing, callback)
    del thing
    print("carried on after the signal", file=sys.stderr, flush=True)
    time.sleep(60)
"""


def test_a_stop_signal_swallowed_by_a_callback_still_stops_at_once_in_one_line(
    tmp_path: Path,
) -> None:
    # A signal whose exception is raised inside a weakref callback (or a __del__) cannot unwind
    # the main thread: Python prints "Exception ignored" and runs on. The stop happens anyway.
    process = subprocess.run(
        [sys.executable, "-c", SWALLOWED_BY_A_CALLBACK],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert process.returncode == 128 + signal.SIGTERM
    assert process.stderr.splitlines() == ["Stopped by SIGTERM."], process.stderr
