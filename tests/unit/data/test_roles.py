"""Column roles: each decision with its reason, and the config's overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.checks import load_config
from tasks.data.profile import profile_frame, profile_notes
from tasks.errors import ConfigError, DataError

N = 400


def table(**columns: object) -> pd.DataFrame:
    """A labelled frame of N rows with one plain numeric feature plus the given columns."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=N), "label": rng.choice(["a", "b"], size=N)})
    for name, values in columns.items():
        frame[name] = values
    return frame


def role_of(frame: pd.DataFrame, column: str, **kwargs: object) -> tuple[str, str]:
    profile = profile_frame(frame, "label", **kwargs)  # type: ignore[arg-type]
    role = profile.column_roles[column]
    return role.role, role.reason


def test_unique_strings_are_an_identifier_and_left_out() -> None:
    frame = table(ticket=[f"T-{i:05d}" for i in range(N)])
    profile = profile_frame(frame, "label")
    assert profile.column_roles["ticket"].role == "identifier"
    assert "ticket" not in profile.feature_columns
    assert "ticket" in profile.dropped_columns


def test_repeating_many_level_code_is_a_group_key_named_for_splitting() -> None:
    patients = [f"P{i % 150:03d}" for i in range(N)]  # 150 patients, 2-3 rows each
    profile = profile_frame(table(patient=patients), "label")
    assert profile.column_roles["patient"].role == "group_key"
    assert profile.group_columns == ["patient"]
    assert "patient" not in profile.feature_columns
    assert any("group column" in note and "'patient'" in note for note in profile_notes(profile))


def test_whole_number_key_named_like_an_id_is_a_group_key() -> None:
    role, reason = role_of(table(customer_id=[i % 120 for i in range(N)]), "customer_id")
    assert role == "group_key"
    assert "identifier" in reason


def test_free_form_text_is_left_out_with_its_reason() -> None:
    rng = np.random.default_rng(1)
    words = ["red", "house", "by", "the", "river", "small", "old", "dog", "sings"]
    comments = [" ".join(rng.choice(words, size=6)) for _ in range(N)]
    role, reason = role_of(table(comment=comments), "comment")
    assert role == "text"
    assert "free-form" in reason


@pytest.mark.parametrize(
    ("values", "parts"),
    [
        (pd.date_range("2020-01-01", periods=N, freq="37h").strftime("%Y-%m-%dT%H:%M:%SZ"), None),
        (pd.date_range("2021-03-01", periods=N, freq="D").strftime("%d/%m/%Y"), None),
        ([f"{h:02d}:{m:02d}" for h, m in zip(range(N), range(N), strict=True)], ["hour"]),
    ],
    ids=["iso-utc", "day-month-year", "time-of-day"],
)
def test_dates_and_times_are_datetime_with_the_calendar_parts_that_vary(
    values: object, parts: list[str] | None
) -> None:
    if parts == ["hour"]:
        values = [f"{i % 24:02d}:{(i * 7) % 60:02d}" for i in range(N)]
    profile = profile_frame(table(when=values), "label")
    role = profile.column_roles["when"]
    assert role.role == "datetime"
    assert "when" in profile.datetime_columns
    assert "when" not in profile.categorical_columns  # the raw value is never one-hot encoded
    if parts:
        assert role.calendar_parts == parts
    else:
        assert {"month", "weekday"} <= set(role.calendar_parts)


def test_low_cardinality_whole_number_codes_are_categorical_but_counts_stay_numbers() -> None:
    rng = np.random.default_rng(2)
    frame = table(precinct=rng.integers(1, 6, size=N), visits=rng.integers(0, 6, size=N))
    profile = profile_frame(frame, "label")
    assert profile.column_roles["precinct"].role == "categorical"
    assert "codes" in profile.column_roles["precinct"].reason
    assert profile.column_roles["visits"].role == "numeric"


def test_constant_boolean_numeric_and_many_level_categorical() -> None:
    rng = np.random.default_rng(3)
    frame = table(
        same=["x"] * N,
        flag=rng.choice(["yes", "no"], size=N),
        amount=rng.gamma(2.0, size=N),
        city=[f"city{i % 60}" for i in range(N)],
    )
    profile = profile_frame(frame, "label")
    roles = {name: role.role for name, role in profile.column_roles.items()}
    assert roles == {
        "x": "numeric",
        "same": "constant",
        "flag": "boolean",
        "amount": "numeric",
        "city": "categorical",
    }
    assert profile.column_roles["city"].encoding == "target"  # 60 levels: not one-hot
    assert profile.target_encoded_columns == ["city"]


def test_a_declared_role_overrides_the_inferred_one() -> None:
    frame = table(ticket=[f"T-{i:05d}" for i in range(N)], precinct=[1 + i % 4 for i in range(N)])
    profile = profile_frame(frame, "label", columns={"precinct": "numeric", "x": "identifier"})
    assert profile.column_roles["precinct"].role == "numeric"
    assert "columns.precinct" in profile.column_roles["precinct"].reason
    assert "x" in profile.dropped_columns


def test_declared_epoch_numbers_become_a_datetime() -> None:
    seconds = 1_600_000_000 + np.arange(N) * 86_400 * 3
    role, _ = role_of(table(stamp=seconds), "stamp", columns={"stamp": "datetime"})
    assert role == "datetime"


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"nope": "numeric"}, "columns.nope: the data has no feature column 'nope'"),
        ({"word": "numeric"}, "columns.word: declared numeric, but column 'word' holds text"),
        ({"word": "datetime"}, "columns.word: declared datetime"),
    ],
)
def test_a_declared_role_the_data_cannot_have_is_one_sentence(
    columns: dict[str, str], message: str
) -> None:
    frame = table(word=["alpha", "beta"] * (N // 2))
    with pytest.raises(DataError, match=message):
        profile_frame(frame, "label", columns=columns)


def test_an_unknown_role_is_refused_at_config_time_with_its_key_path(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data: d.csv\ntarget: label\ncolumns:\n  my col: number\n")
    with pytest.raises(ConfigError, match=r"key 'columns\.my col'"):
        load_config(config)
