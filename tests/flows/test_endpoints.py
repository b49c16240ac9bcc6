"""Every endpoint a user names is checked before work starts: one sentence with the address."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flows.cli.main import USER_ERROR_EXIT, main
from flows.deployments import api_shared_with_workers
from flows.runtime import check_endpoint
from tasks.errors import ConfigError
from tests.conftest import free_port
from tests.trained_run import TrainedRun


@contextmanager
def listening() -> Iterator[int]:
    """A loopback port something listens on (and so nothing else can)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def error_of(capsys: pytest.CaptureFixture[str]) -> str:
    error = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert error.startswith("error:") and "Traceback" not in error
    return error


def test_an_endpoint_that_answers_passes_and_one_that_does_not_is_named() -> None:
    with listening() as port:
        check_endpoint("127.0.0.1", port, what="test server", address=f"127.0.0.1:{port}")
    closed = free_port()
    with pytest.raises(ConfigError, match=f"No test server answers at 127.0.0.1:{closed}"):
        check_endpoint("127.0.0.1", closed, what="test server", address=f"127.0.0.1:{closed}")


def test_an_unreachable_dask_scheduler_stops_train_before_it_starts(
    binary_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    with (
        pytest.raises(ConfigError, match="No Dask scheduler answers at"),
        api_shared_with_workers(address),
    ):
        pass
    runs_dir = tmp_path / "runs"
    args = ["train", "--data", str(binary_csv), "--target", "label"]
    assert main([*args, f"--set=runs_dir={runs_dir}", "--dask-address", address]) == 2
    assert f"No Dask scheduler answers at {address} (Connection refused)" in error_of(capsys)
    assert not runs_dir.exists()  # nothing started


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_api_with_an_impossible_port_is_one_sentence(
    trained_run: TrainedRun, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    args = ["api", "--model", str(trained_run.run_dir), "--runs-dir", str(trained_run.runs_dir)]
    assert main([*args, "--port", port]) == USER_ERROR_EXIT
    assert f"--port {port} is not a port number (1-65535)" in error_of(capsys)


def test_api_on_a_port_in_use_is_one_sentence_with_the_address(
    trained_run: TrainedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["api", "--model", str(trained_run.run_dir), "--runs-dir", str(trained_run.runs_dir)]
    with listening() as port:
        assert main([*args, "--port", str(port)]) == USER_ERROR_EXIT
    assert f"Cannot listen on 127.0.0.1:{port} (Address already in use)" in error_of(capsys)
