"""A stop whose executor clean-up did not finish in its time still leaves nothing in /dev/shm:
once the child processes are stopped, the process's joblib folders and loky semaphores go by
name (flows/cli/stop.py: remove_shared_memory_left). In a process of its own: in the test
process it would remove the names of a pool other tests use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, shared_memory_left_by

LEAVE_THEN_REMOVE = """
import _multiprocessing, os, sys
from pathlib import Path
from flows.cli.stop import remove_shared_memory_left

folder = Path(sys.argv[1]) / f"joblib_memmapping_folder_{os.getpid()}_abc_def"
folder.mkdir()
(folder / "X_train.pkl").write_bytes(bytes(1024))
name = f"/loky-{os.getpid()}-tabpipe-test"
semaphore = _multiprocessing.SemLock(1, 1, 1, name, False)  # kind 1: a semaphore
before = Path("/dev/shm/sem" + name.replace("/", ".")).exists()
remove_shared_memory_left()
print(os.getpid(), before, folder.exists())
"""


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="POSIX shared memory in /dev/shm")
def test_what_the_clean_up_left_goes_by_name(tmp_path: Path) -> None:
    other = tmp_path / "joblib_memmapping_folder_1_abc_def"  # another process's: kept
    other.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", LEAVE_THEN_REMOVE, str(tmp_path)],
        cwd=PROJECT_ROOT,
        env={"JOBLIB_TEMP_FOLDER": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pid, semaphore_was_there, folder_left = done.stdout.split()
    assert semaphore_was_there == "True" and folder_left == "False"
    assert shared_memory_left_by(int(pid)) == []
    assert other.exists()
