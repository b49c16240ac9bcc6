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


def test_the_training_flow_leaves_the_write_stage_libraries_to_the_write_stage() -> None:
    """skops (about 1 s: it lists every scikit-learn estimator) and matplotlib load where the
    model file and the plots are made (a CV worker, or the write stage), not before the run
    starts."""
    probe = (
        "import sys, flows.train; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'skops', 'matplotlib'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
