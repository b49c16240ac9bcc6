"""`tabpipe --help` and the CLI's error paths must not pay for scikit-learn, pandera or Prefect:
importing the command's modules loads none of them (they come when a command needs them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.runtime import import_in_background
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
    """skops (about 1 s: it lists every scikit-learn estimator) and matplotlib load after the
    search (flows/runtime.py: import_in_background), not before the run starts."""
    probe = (
        "import sys, flows.train; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'skops', 'matplotlib'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_modules_imported_in_the_background_are_loaded_and_a_missing_one_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tabpipe_probe_module.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tabpipe_probe_module", raising=False)
    thread = import_in_background(("tabpipe_no_such_module", "tabpipe_probe_module"))
    thread.join(timeout=30)
    assert not thread.is_alive() and thread.daemon
    assert sys.modules["tabpipe_probe_module"].LOADED is True
    assert "tabpipe_no_such_module" not in sys.modules
    monkeypatch.delitem(sys.modules, "tabpipe_probe_module")
