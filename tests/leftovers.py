"""No process left behind: every process the test session started (directly or not) is gone
when the session ends, or the session fails and names each one with the tests that ran when it
was born.

Every process the session starts inherits a session mark in its environment (set before any
test runs), so a leftover is found even after its parent died and it was re-parented. What this
process's own exit ends is ended here first, the same way: the servers Prefect started in it (its
`atexit` hook stops them) and joblib's pool of CV workers; the resource trackers it started read
a pipe from this process and end when it exits. What remains is a real leftover."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

import psutil
import pytest

SESSION_MARK = "TABPIPE_TEST_SESSION"
GRACE_SECONDS = 10.0


@dataclass
class Timeline:
    """When each test ran (start, end, node id), to name the tests a leftover was born during."""

    spans: list[tuple[float, float, str]] = field(default_factory=list)

    def running_at(self, moment: float) -> list[str]:
        return [node for start, end, node in self.spans if start - 1.0 <= moment <= end + 1.0]


TIMELINE = Timeline()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    start = time.time()
    yield
    TIMELINE.spans.append((start, time.time(), item.nodeid))


def marked_by_session(process: psutil.Process, mark: str) -> bool:
    try:
        return process.environ().get(SESSION_MARK) == mark
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def session_processes(mark: str) -> list[psutil.Process]:
    """Processes other than this one that carry the session's mark."""
    me = os.getpid()
    return [p for p in psutil.process_iter() if p.pid != me and marked_by_session(p, mark)]


def stop_prefects_own_servers() -> None:
    """What Prefect's atexit hook does for the temporary servers it started in this process."""
    import sys

    if "prefect.server.api.server" not in sys.modules:
        return
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()


def stop_joblib_workers() -> None:
    """What joblib does at exit: shut its reusable pool of worker processes down."""
    import sys

    if "joblib.externals.loky.reusable_executor" not in sys.modules:
        return
    from joblib.externals.loky import reusable_executor

    if reusable_executor._executor is not None:
        reusable_executor._executor.shutdown(wait=True, kill_workers=True)


def ends_with_this_process(process: psutil.Process) -> bool:
    """A resource tracker this process started: it ends at the end of its pipe from here."""
    try:
        command = " ".join(process.cmdline())
        return process.ppid() == os.getpid() and "resource_tracker import main" in command
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return True


def describe(process: psutil.Process) -> str:
    try:
        with process.oneshot():
            born = process.create_time()
            command = " ".join(process.cmdline())[:200]
            parent = process.ppid()
        tests = ", ".join(TIMELINE.running_at(born)) or "no test (between tests)"
        return f"pid {process.pid} (parent {parent}): {command}\n    born during: {tests}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return f"pid {process.pid}: gone while being described"


def leftovers(mark: str) -> list[psutil.Process]:
    """The session's processes still alive after a grace period (some are on their way out)."""
    deadline = time.monotonic() + GRACE_SECONDS
    found = [p for p in session_processes(mark) if not ends_with_this_process(p)]
    while found and time.monotonic() < deadline:
        time.sleep(0.5)
        found = [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    mark = os.environ.get(SESSION_MARK)
    if not mark:
        return
    stop_prefects_own_servers()
    stop_joblib_workers()
    found = leftovers(mark)
    if not found:
        return
    report = "\n".join(describe(p) for p in found)
    for process in found:  # the machine is left clean either way
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"{len(found)} process(es) the tests started were left running:\n{report}"
    if reporter is not None:
        reporter.write_sep("=", "processes left behind", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
