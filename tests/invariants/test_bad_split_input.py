"""A split column a user names wrongly is one sentence, exit code 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_frame
from tests.invariants.test_bad_input import train_cli

BAD_SPLITS = {
    "missing group column": (
        ["--set", "split.groups=household"],
        "split.groups column 'household' is not in the data.",
    ),
    "no group column to detect": (["--set", "split.groups=auto"], "no column looks like a group"),
    "time column of words": (
        ["--set", "split.time=colour"],
        "Column 'colour' (split.time) holds 80 value(s) that are not dates or numbers",
    ),
    "gap without time": (["--set", "split.gap=3"], "gap needs time"),
    "the target as groups": (["--set", "split.groups=label"], "is the target"),
}


@pytest.mark.parametrize("case", list(BAD_SPLITS))
def test_a_bad_split_column_is_one_sentence(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    extra, message = BAD_SPLITS[case]
    data = tmp_path / "data.csv"
    make_frame(80).fillna({"colour": "red"}).to_csv(data, index=False)
    code, _, err = train_cli(capsys, data, tmp_path / "runs", *extra)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
