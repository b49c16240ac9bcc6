"""Shared fixtures: tiny seeded frames for units, one Prefect test harness for flow tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# The trained-run fixtures the serving, report and API tests share.
pytest_plugins = ["tests.trained_run", "tests.leftovers"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Quiet, offline Prefect for every test process (see ../shared/STACK.md).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def free_port() -> int:
    """A loopback port nobody listens on right now (for servers the tests start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_training_in_own_group(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`tabpipe train ARGUMENTS` in a session of its own (its own process group, like a command
    in a terminal, so a test can signal the group), output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "train", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 20) -> int:
    """SIGTERM to the process the test started (its own PID), SIGKILL if it does not go."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)


def shared_memory_left_by(pid: int) -> list[str]:
    """What a process left in /dev/shm (RAM until a reboot): joblib's memmapping folders and
    loky's named semaphores carry the PID of the process that made them."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return []
    return sorted(p.name for p in shm.iterdir() if f"_{pid}_" in p.name or f"loky-{pid}-" in p.name)


def make_frame(n_rows: int = 120, positive_share: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """Binary data with signal, two numeric and one categorical feature, ~10% missing cells."""
    rng = np.random.default_rng(seed)
    y = rng.random(n_rows) < positive_share
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n_rows) + 1.5 * y,
            "x2": rng.normal(size=n_rows) - 0.5 * y,
            "colour": rng.choice(["red", "green", "blue"], size=n_rows),
            "label": np.where(y, "yes", "no"),
        }
    )
    for column in ("x1", "x2", "colour"):
        frame.loc[rng.random(n_rows) < 0.1, column] = np.nan
    return frame


@pytest.fixture
def binary_frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def binary_csv(tmp_path: Path, binary_frame: pd.DataFrame) -> Path:
    path = tmp_path / "tiny.csv"
    binary_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def signing_key_for_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Models the tests save are signed with a key of the session, never the user's own."""
    path = tmp_path_factory.mktemp("tabpipe_home") / "signing.key"
    previous = os.environ.get("TABPIPE_SIGNING_KEY")
    os.environ["TABPIPE_SIGNING_KEY"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("TABPIPE_SIGNING_KEY", None)
    else:
        os.environ["TABPIPE_SIGNING_KEY"] = previous


@pytest.fixture(scope="module")
def local_dask() -> Iterator[Any]:
    """A client of a Dask scheduler and one two-thread worker in this process (no processes)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (about 9 s to start)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for `python -m flows.cli` subprocesses: one PREFECT_HOME for the session,
    migrated once up front (a fresh one costs ~13 s, and two processes must not race on it)."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect_home")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }
    env.pop("PREFECT_API_URL", None)
    warm_up = "from prefect import flow; flow(name='warm-up')(lambda: None)()"
    subprocess.run([sys.executable, "-c", warm_up], env=env, check=True, capture_output=True)
    return env


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real command line (`python -m flows.cli ...`) from the project root."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flows.cli.main", *args],
            cwd=PROJECT_ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
