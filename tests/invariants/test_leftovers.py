"""The session's leftover check sees what it must: a process the tests started, even one in a
session of its own whose parent is gone, carries the session's mark and is found."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.leftovers import SESSION_MARK, leftovers, session_processes


def test_a_detached_process_of_the_session_is_found_and_a_stopped_one_is_not() -> None:
    mark = os.environ[SESSION_MARK]
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        assert sleeper.pid in [p.pid for p in session_processes(mark)]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sleeper.pid not in [p.pid for p in leftovers(mark)]
