"""`tabpipe --help` and the CLI's error paths must not pay for scikit-learn, pandera or Prefect:
importing the command's modules loads none of them (they come when a command needs them)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

HEAVY = ("sklearn", "pandera", "prefect")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    probe = (
        "import sys, flows.cli.main; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
