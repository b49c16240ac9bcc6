"""Target hygiene: blank labels are missing, 0/1 is binary, the positive class follows a rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import parse_config
from tasks.data.profile import profile_frame, profile_notes
from tasks.data.split import split_frame
from tasks.errors import DataError


def frame_with_labels(labels: list[object]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=len(labels)), "y": labels})


def test_whitespace_only_and_empty_labels_are_missing_dropped_and_counted() -> None:
    labels = ["yes", "no"] * 20 + ["   ", "", "\t", " yes "]
    profile = profile_frame(frame_with_labels(labels), "y")
    assert profile.classes == ["no", "yes"]  # no third class made of spaces
    assert profile.dropped_target_rows == 3
    assert profile.class_counts == {"no": 20, "yes": 21}  # ' yes ' is 'yes'
    split = split_frame(frame_with_labels(labels), profile, 0.25, seed=0)
    assert set(split.y_train) | set(split.y_test) == {"no", "yes"}
    assert len(split.y_train) + len(split.y_test) == 41


def test_integer_zero_one_target_is_binary_with_the_minority_positive() -> None:
    labels = [0] * 30 + [1] * 10
    profile = profile_frame(frame_with_labels(labels), "y")
    assert profile.task == "binary"
    assert profile.positive_label == "1"
    notes = profile_notes(profile)
    assert any("Positive class: '1' (the minority class" in note for note in notes)


def test_minority_rule_picks_the_smaller_class_whatever_its_name() -> None:
    labels = ["Yes"] * 30 + ["No"] * 10
    assert profile_frame(frame_with_labels(labels), "y").positive_label == "No"


@pytest.mark.parametrize(
    ("yaml_value", "labels", "expected"),
    [
        ("0", [0] * 30 + [1] * 10, "0"),
        ("1.0", [0.0] * 30 + [1.0] * 10, "1"),
        ("Yes", ["Yes"] * 30 + ["No"] * 10, "Yes"),  # YAML reads Yes as true
        ("'No'", ["Yes"] * 30 + ["No"] * 10, "No"),
        ("no", ["YES"] * 30 + ["NO"] * 10, "NO"),  # false -> the class spelled no
    ],
)
def test_positive_label_from_yaml_and_set_accepts_numbers_and_strings(
    tmp_path: Path, yaml_value: str, labels: list[object], expected: str
) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"data: d.csv\ntarget: y\npositive_label: {yaml_value}\n")
    from_yaml = parse_config(config_file)
    from_set = parse_config(
        None, overrides=[f"positive_label={yaml_value}"], data=Path("d.csv"), target="y"
    )
    for config in (from_yaml, from_set):
        profile = profile_frame(
            frame_with_labels(labels), "y", positive_label=config.positive_label
        )
        assert profile.positive_label == expected
        assert any("set by positive_label" in note for note in profile_notes(profile)) or (
            expected == min(profile.class_counts, key=profile.class_counts.__getitem__)
        )


def test_a_positive_label_that_is_no_class_names_the_classes() -> None:
    with pytest.raises(
        DataError, match=r"positive_label 'maybe' is not a class of the target \(0, 1\)"
    ):
        profile_frame(frame_with_labels([0, 1] * 10), "y", positive_label="maybe")
