"""Answer before any server starts: a mistake in the command line, the config or the data file's
header is one sentence (exit 2) printed before Prefect is imported, so no server (temporary or
not) exists yet and the Prefect home stays untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.runtime import TrainParameters, check_command_line, resolve_config
from tasks.config import parse_config
from tasks.data.header import check_target_in_header, closest
from tasks.errors import ConfigError, DataError
from tests.conftest import PROJECT_ROOT

PENGUINS = PROJECT_ROOT / "configs" / "penguins.yaml"
PENGUINS_DATA = PROJECT_ROOT / "data" / "penguins.csv"

# Runs the real command in a fresh interpreter and reports what it imported by the time it
# answered: the order is the behaviour under test, not the time it takes.
PROBE = """
import contextlib, io, json, sys
from flows.cli.main import main
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    code = main(sys.argv[1:])
pool = sys.modules.get("joblib.externals.loky.reusable_executor")
executor = getattr(pool, "_executor", None)
workers = [p for p in getattr(executor, "_processes", {}).values() if p.is_alive()]
print(json.dumps({"code": code, "stderr": stderr.getvalue(),
                  "prefect_imported": "prefect" in sys.modules, "workers": len(workers)}))
"""


def answer_of(args: list[str], home: Path, *, probe: str = PROBE) -> dict[str, object]:
    env = {**os.environ, "PREFECT_HOME": str(home), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (
            ["train", "--data", str(PENGUINS_DATA), "--target", "specis"],
            "Target column 'specis' is not in",
        ),
        (["train", "--data", "no/such.csv", "--target", "species"], "does not exist"),
        (["train", str(PENGUINS), "--set", "splitt.cv_folds=3"], "Did you mean 'split'?"),
        (["train", str(PENGUINS), "--set", "models=[knn"], "--set 'models=[knn'"),
        (["train", str(PENGUINS), "--set", "models=[no_such_family]"], "unknown model family"),
        (  # the default search: its CV workers start beside this check, and end with it
            [
                *["train", "--data", str(PENGUINS_DATA), "--target", "species"],
                *["--set", f"runs_dir={PENGUINS_DATA}"],
            ],
            "is a file, not a folder; set runs_dir to a folder.",
        ),
    ],
    ids=["wrong-target", "missing-file", "bad-key", "set-syntax", "unknown-family", "runs-dir"],
)
def test_mistakes_are_answered_before_prefect_is_imported(
    args: list[str], sentence: str, tmp_path: Path
) -> None:
    home = tmp_path / "prefect-home"
    answer = answer_of(args, home)
    assert answer["code"] == 2
    lines = str(answer["stderr"]).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and sentence in lines[0]
    assert answer["prefect_imported"] is False
    assert answer["workers"] == 0  # ended at the answer, not at the interpreter's exit
    assert not home.exists()  # no server, temporary or not, opened the Prefect home


# The same mistake answered again and again in one process (as the in-process tests do): each
# answer's early pool start races the one before it, which is still ending. A deadlock between
# loky's threads hung the whole suite once; here it would end the probe at its timeout.
REPEATED = """
import contextlib, io, json, sys, psutil
from flows.cli.main import main
codes = []
for _ in range(int(sys.argv[1])):
    with contextlib.redirect_stderr(io.StringIO()):
        codes.append(main(sys.argv[2:]))
def is_worker(child):
    try:  # loky's resource tracker stays to the exit
        return "resource_tracker" not in " ".join(child.cmdline())
    except psutil.Error:  # ended meanwhile, or a killed worker not yet reaped
        return False
workers = [child for child in psutil.Process().children(recursive=True) if is_worker(child)]
gone, alive = psutil.wait_procs(workers, timeout=5)
print(json.dumps({"codes": codes, "workers": len(alive)}))
"""


def test_the_same_mistake_answered_again_and_again_in_one_process(tmp_path: Path) -> None:
    args = ["train", "--data", str(PENGUINS_DATA), "--target", "species"]
    args += ["--set", f"runs_dir={PENGUINS_DATA}"]  # the default search: the pool starts early
    answer = answer_of(["40", *args], tmp_path / "prefect-home", probe=REPEATED)
    assert answer["codes"] == [2] * 40
    # Every early pool ended with its answer: a worker loky starts again while its pool shuts
    # down (it replaces one that left cleanly) is killed within moments.
    assert answer["workers"] == 0


def test_a_wrong_target_lists_the_columns_and_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        check_target_in_header(PENGUINS_DATA, "Specie")
    message = str(raised.value)
    assert "Did you mean 'species'?" in message
    assert "'island'" in message and "'body_mass_g'" in message


def test_a_target_nothing_like_any_column_lists_them_without_a_guess() -> None:
    with pytest.raises(DataError) as raised:
        check_target_in_header(PENGUINS_DATA, "zzzz")
    assert "Did you mean" not in str(raised.value)
    assert "'species'" in str(raised.value)


def test_the_header_of_a_parquet_file_is_read_without_its_rows(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "rows.parquet"
    pd.DataFrame({"a": [1, 2], "label": ["x", "y"]}).to_parquet(path)
    assert check_target_in_header(path, "label") == ["a", "label"]
    with pytest.raises(DataError, match="Did you mean 'label'"):
        check_target_in_header(path, "labl")


@pytest.mark.parametrize(
    ("content", "sentence"),
    [(b"", "is empty"), (b"\x00\x01\x02binary", "not a text table")],
)
def test_files_that_are_not_tables_are_named(tmp_path: Path, content: bytes, sentence: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=sentence):
        check_target_in_header(path, "label")


def test_a_directory_is_not_a_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        check_target_in_header(tmp_path, "label")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=[knn]", "--set model=[knn]: unknown key 'model'. Did you mean 'models'?"),
        ("split.cv_fold=3", "Did you mean 'split.cv_folds'?"),
        ("threshold.objectiv=f1", "Did you mean 'threshold.objective'?"),
        ("split.cv_folds=1", "--set split.cv_folds=1: key 'split.cv_folds'"),
    ],
)
def test_a_bad_set_names_the_command_line_and_the_closest_key(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(PENGUINS, overrides=[override])
    assert expected in str(raised.value)
    assert "penguins.yaml" not in str(raised.value)


def test_a_typo_in_the_file_names_the_file_and_the_closest_key(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text(f"data: {PENGUINS_DATA}\ntarget: species\nseeed: 3\n")
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    assert str(raised.value) == f"{config}: unknown key 'seeed'. Did you mean 'seed'?"


def test_checks_run_cheapest_first_the_header_before_the_families(tmp_path: Path) -> None:
    """A wrong target and an unknown family together: the target is said (it needs no
    scikit-learn); the family check comes after."""
    params = TrainParameters(
        data=str(PENGUINS_DATA), target="specis", overrides=["models=[no_such_family]"]
    )
    with pytest.raises(DataError, match="specis"):
        check_command_line(params)
    with pytest.raises(ConfigError, match="no_such_family"):
        resolve_config(params.model_copy(update={"target": "species"}))


def test_closest_ignores_case() -> None:
    assert closest("SPECIES", ["island", "species"]) == "species"
