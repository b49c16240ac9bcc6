"""One Prefect home per project and the server every command reports to (docs/prefect.md).

- The home is `.prefect/` at the project root (the folder holding configs/ or pyproject.toml),
  unless PREFECT_HOME says otherwise; `make server`, `make run` and `tabpipe` all use it.
- `tabpipe server start` runs `prefect server start` on 127.0.0.1 in the background, in its own
  session (a Ctrl-C in the terminal does not reach it), and writes its PID and port to
  `.prefect/tabpipe-server.json`. Every command then reports to it: runs show in the UI and no
  command pays for starting a server.
- With no server up, a command starts a temporary one (Prefect's ephemeral API, no UI) for its
  own run, in its own session too, and stops it by its PID when the command ends.
- A PREFECT_API_URL the user set wins; if nothing answers there, that is one sentence.

Nothing here imports Prefect: a command connects before Prefect is imported, so the settings
Prefect reads from the environment are already in place."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from tasks.errors import ConfigError

HOME_DIRNAME = ".prefect"
STATE_FILENAME = "tabpipe-server.json"
LOG_FILENAME = "tabpipe-server.log"
DEFAULT_PORT = 4200
HOST = "127.0.0.1"
HEALTH_TIMEOUT_SECONDS = 2.0
START_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 20.0
PROJECT_MARKERS = ("configs", "pyproject.toml", HOME_DIRNAME)
# Quiet, offline Prefect (docs/prefect.md); the user's environment wins.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
}


class ServerUnreachable(ConfigError):
    """PREFECT_API_URL names a server that does not answer."""


@dataclass(frozen=True)
class ServerState:
    """What `tabpipe server start` leaves in the Prefect home so other commands find the server."""

    pid: int
    port: int
    home: str
    # A static file server for the project's runs/, so the UI's report links open over HTTP.
    reports_pid: int | None = None
    reports_port: int | None = None
    reports_dir: str | None = None

    @property
    def reports_url(self) -> str | None:
        return f"http://{HOST}:{self.reports_port}" if self.reports_port else None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder (from the working directory up) that looks like a tabpipe project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return here


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or project_root() / HOME_DIRNAME)


def apply_prefect_defaults() -> None:
    """Quiet offline defaults and the project's Prefect home, unless the environment says else."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "prefect" not in sys.modules:  # once Prefect is imported its settings are fixed
        os.environ.setdefault("PREFECT_HOME", str(project_root() / HOME_DIRNAME))


def answers(api_url: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> bool:
    """Does a Prefect server answer at api_url? The standard library's client: httpx's loads
    the system's certificates for every client, even for http:// (0.1-0.2 s of each command)."""
    from http.client import HTTPException
    from urllib.request import urlopen

    try:
        with urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    # refused, timed out or an HTTP error (OSError); not HTTP at all; not a URL
    except (OSError, HTTPException, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state_file(home: Path) -> Path:
    return home / STATE_FILENAME


def read_state(home: Path) -> ServerState | None:
    """The server `tabpipe server start` recorded, if its process is still there."""
    try:
        state = ServerState(**json.loads(state_file(home).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return state if pid_alive(state.pid) else None


def running_server(home: Path) -> ServerState | None:
    """The recorded server when it also answers."""
    state = read_state(home)
    return state if state and answers(state.api_url) else None


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment, or from Prefect's settings once it is imported."""
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return os.environ.get("PREFECT_API_URL") or None


def unreachable_message(api_url: str) -> str:
    return (
        f"No Prefect server answers at PREFECT_API_URL={api_url}: start it "
        "(`tabpipe server start`) or unset PREFECT_API_URL to use a temporary one."
    )


def wait_until_healthy(process: subprocess.Popen[bytes], api_url: str, log: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            where = f" (see {log})" if log else ""
            raise ConfigError(f"The Prefect server exited with code {process.returncode}{where}.")
        if answers(api_url, timeout=1.0):
            return
        time.sleep(0.2)
    stop_pid(process.pid)
    raise ConfigError(f"The Prefect server did not answer at {api_url} within 120 s.")


def stop_pid(pid: int, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to one process we started (its own PID), SIGKILL if it does not go."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid) or reap(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    reap(pid)


def reap(pid: int) -> bool:
    """True once a child of ours has exited (and is reaped); False for a live or foreign one."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not pid_alive(pid)
    return done == pid


def prefect_command() -> list[str]:
    installed = Path(sys.executable).with_name("prefect")
    return [str(installed)] if installed.exists() else [shutil.which("prefect") or "prefect"]


def start_server(home: Path, port: int = DEFAULT_PORT) -> tuple[ServerState, bool]:
    """Start `prefect server start` in the background (or find it running); (state, started)."""
    existing = running_server(home)
    if existing:
        return existing, False
    api_url = f"http://{HOST}:{port}/api"
    if answers(api_url):
        raise ConfigError(
            f"Port {port} already has a Prefect server that tabpipe did not start: "
            f"use it with PREFECT_API_URL={api_url}, or pass --port."
        )
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_FILENAME
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*prefect_command(), "server", "start", "--host", HOST, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in this terminal must not stop the server
        )
    wait_until_healthy(process, api_url, log)
    reports_dir = home.parent / "runs"
    reports = start_report_server(reports_dir, log)
    state = ServerState(
        pid=process.pid,
        port=port,
        home=str(home),
        reports_pid=reports.pid,
        reports_port=reports.port,
        reports_dir=str(reports_dir),
    )
    state_file(home).write_text(json.dumps(asdict(state)) + "\n", encoding="utf-8")
    return state, True


@dataclass(frozen=True)
class ReportServer:
    pid: int
    port: int


def start_report_server(runs_dir: Path, log: Path) -> ReportServer:
    """The standard library's static file server on runs/ (loopback only): browsers refuse the
    file:// links a Prefect UI would otherwise show for reports."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", HOST],
            cwd=runs_dir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ReportServer(process.pid, port)


def stop_server(home: Path) -> ServerState | None:
    """Stop the server `tabpipe server start` recorded (by its PID); None if none was running."""
    state = read_state(home)
    if state is not None:
        if state.reports_pid is not None:
            stop_pid(state.reports_pid)
        stop_pid(state.pid)
    state_file(home).unlink(missing_ok=True)
    return state


def temporary_server_command(port: int) -> list[str]:
    """Prefect's own ephemeral API (what a flow starts when no server is configured), no UI,
    stopping itself if this process dies without stopping it (flows/temporary_api.py)."""
    return [
        sys.executable,
        "-m",
        "flows.temporary_api",
        "--parent",
        str(os.getpid()),
        "--port",
        str(port),
    ]


def free_loopback_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def temporary_server(while_starting: Callable[[], object] = lambda: None) -> Iterator[ServerState]:
    """A server for one command, in its own session, stopped by its PID when the command ends.
    `while_starting` runs as it boots (about 5 s), with PREFECT_API_URL already pointing at it:
    the command's own imports overlap the server's."""
    port = free_loopback_port()
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    process = subprocess.Popen(
        temporary_server_command(port),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    TEMPORARY_SERVERS.append(process.pid)
    state = ServerState(pid=process.pid, port=port, home=str(prefect_home()))
    try:
        with api_url_set(state.api_url):
            while_starting()
            wait_until_healthy(process, state.api_url, None)
            yield state
    finally:
        stop_pid(process.pid)
        TEMPORARY_SERVERS.remove(process.pid)


# PIDs of temporary servers this process started: an interrupted command stops them on its way out.
TEMPORARY_SERVERS: list[int] = []


@dataclass(frozen=True)
class Connection:
    """Where this command's runs go: a server with a UI (ui_url) or a temporary one (None)."""

    api_url: str
    ui_url: str | None


@contextmanager
def prefect_connection(
    *, temporary_ok: bool = True, then: Callable[[], object] = lambda: None
) -> Iterator[Connection]:
    """Point this process at the Prefect API its runs should use, before Prefect is imported:
    PREFECT_API_URL if set (and answering), else the project's running server, else a
    temporary server for this command alone. `then` runs once the address is set (for a
    temporary server: while it boots)."""
    configured = configured_api_url()
    if configured:
        if not answers(configured):
            raise ServerUnreachable(unreachable_message(configured))
        then()
        yield Connection(configured, configured.rstrip("/").removesuffix("/api"))
        return
    state = running_server(prefect_home())
    if state is not None:
        with api_url_set(state.api_url), reports_served_by(state):
            then()
            yield Connection(state.api_url, state.ui_url)
        return
    if not temporary_ok:
        raise ServerUnreachable(
            "No Prefect server is running for this project: start one with "
            "`tabpipe server start` (or set PREFECT_API_URL to a running one)."
        )
    with temporary_server(then) as temporary:
        yield Connection(temporary.api_url, None)


@contextmanager
def heartbeats_left_to_end_alone() -> Iterator[None]:
    """Flow runs started in this process keep their heartbeats (by them the server marks a
    killed run crashed) without waiting for the heartbeat thread when they end: Prefect's sync
    engine joins it, and it sleeps in whole seconds, so every run ended with up to 1 s of
    nothing (0.5 s on average). Its async engine does not join: the daemon thread sees the stop
    within a second and ends by itself."""
    from prefect import flow_engine

    send_heartbeats = flow_engine._send_heartbeats
    flow_engine._send_heartbeats = partial(send_heartbeats, join_on_exit=False)
    try:
        yield
    finally:
        flow_engine._send_heartbeats = send_heartbeats


@contextmanager
def api_url_set(api_url: str) -> Iterator[None]:
    """PREFECT_API_URL for this process: in the environment before Prefect is imported (its
    settings are read then), through its settings context after."""
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield
        return
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def flow_run_url(ui_url: str, flow_run_id: str) -> str:
    """The run's page in the Prefect UI (the path Prefect's own "View at" line uses)."""
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


@contextmanager
def reports_served_by(state: ServerState) -> Iterator[None]:
    """Runs written into the served runs/ link their report over HTTP (tasks/run/report.py)."""
    from tasks.run.report import REPORTS_DIR_VARIABLE, REPORTS_URL_VARIABLE

    if state.reports_url is None or state.reports_dir is None:
        yield
        return
    saved = {key: os.environ.get(key) for key in (REPORTS_URL_VARIABLE, REPORTS_DIR_VARIABLE)}
    os.environ[REPORTS_URL_VARIABLE] = state.reports_url
    os.environ[REPORTS_DIR_VARIABLE] = state.reports_dir
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
