"""Drift on planted batches: the shifted columns, and only those, are flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import DiagnosticsConfig
from tasks.evaluation.drift import (
    REFERENCE_SAMPLE_ROWS,
    compare_tables,
    drift_table,
    reference_sample,
)
from tasks.run.outputs import write_reference
from tasks.serving.reference import stored_reference

SETTINGS = DiagnosticsConfig()
FEATURES = ["x1", "x2", "x3", "colour", "region"]


def batch(n_rows: int, seed: int, *, shift_x2: float = 0.0, red_share: float = 0.3) -> pd.DataFrame:
    """A batch from one process: x2's mean and colour's mix are the planted changes."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n_rows),
            "x2": rng.normal(loc=shift_x2, size=n_rows),
            "x3": rng.exponential(size=n_rows),
            "colour": rng.choice(["red", "blue"], n_rows, p=[red_share, 1 - red_share]),
            "region": rng.choice(["north", "south", "east", "west"], n_rows),
            "label": rng.choice(["no", "yes"], n_rows, p=[0.7, 0.3]),
        }
    )


@pytest.mark.parametrize("n_rows", [600, 5000], ids=["tests under 1000 rows", "distances"])
def test_a_shifted_batch_flags_its_drifted_columns_and_only_those(n_rows: int) -> None:
    reference = batch(n_rows, seed=1)
    shifted = batch(n_rows, seed=2, shift_x2=0.6, red_share=0.6)
    drift = compare_tables(reference, shifted, features=FEATURES, target="label", settings=SETTINGS)
    assert sorted(drift["drifted_columns"]) == ["colour", "x2"]
    assert [row["column"] for row in drift["columns"][:2]] == drift["drifted_columns"]
    assert drift["share_drifted"] == 0.4 and not drift["dataset_drift"]
    assert drift["target"]["drifted"] is False
    methods = {row["column"]: row["method"] for row in drift["columns"]}
    if n_rows <= 1000:
        assert methods == {
            "x1": "ks",
            "x2": "ks",
            "x3": "ks",
            "colour": "chi_squared",
            "region": "chi_squared",
        }
    else:
        assert methods["x2"] == "wasserstein_normed" and methods["colour"] == "jensen_shannon"


def test_the_same_process_does_not_drift() -> None:
    drift = compare_tables(
        batch(3000, seed=3),
        batch(3000, seed=4),
        features=FEATURES,
        target="label",
        settings=SETTINGS,
    )
    assert drift["drifted_columns"] == [] and drift["drift_found"] is False


def test_new_and_gone_categories_missing_share_and_target_drift() -> None:
    reference = batch(2000, seed=5)
    current = batch(2000, seed=6)
    current["region"] = current["region"].replace({"west": "overseas"})
    current.loc[current.index[:400], "x3"] = np.nan
    current["label"] = np.random.default_rng(7).choice(["no", "yes"], 2000, p=[0.4, 0.6])
    drift = compare_tables(reference, current, features=FEATURES, target="label", settings=SETTINGS)
    rows = {row["column"]: row for row in drift["columns"]}
    assert rows["region"]["new_categories"] == ["overseas"]
    assert rows["region"]["gone_categories"] == ["west"]
    assert rows["x3"]["reasons"] == ["missing share"]
    assert rows["x3"]["missing_share_change"] == pytest.approx(0.2)
    assert drift["target"]["drifted"] and drift["drift_found"]
    table = drift_table(drift)
    assert table[0]["column"] == "label (target)" and table[0]["drifted"] == "yes"


def test_the_stored_reference_is_a_seeded_sample_that_drifts_like_the_whole(
    tmp_path: Path,
) -> None:
    """A run keeps at most REFERENCE_SAMPLE_ROWS training rows (Parquet, types kept, mixed text
    stored as text); a later batch compared with the sample flags what the whole would flag."""
    whole = batch(12_000, seed=3)
    whole["mixed"] = pd.Series(["a", 1] * (len(whole) // 2), dtype=object)
    rows = whole.index[whole.index % 3 != 0]  # the training rows (the rest: test rows)
    columns = [*FEATURES, "mixed", "label"]
    sample = reference_sample(whole, rows, columns, seed=0)
    assert len(sample) == REFERENCE_SAMPLE_ROWS and sample.index.isin(rows).all()
    assert sample.index.is_monotonic_increasing
    assert sample.equals(reference_sample(whole, rows, columns, seed=0))  # seeded

    path = write_reference(sample, tmp_path / "reference.parquet")
    assert path is not None
    stored = stored_reference(path)
    assert stored is not None and list(stored.columns) == columns
    assert stored["x1"].dtype == float and set(stored["mixed"]) == {"a", "1"}

    later = batch(3000, seed=4, shift_x2=1.0)
    from_sample = compare_tables(
        stored, later, features=FEATURES, target="label", settings=SETTINGS
    )
    from_whole = compare_tables(
        whole.loc[rows], later, features=FEATURES, target="label", settings=SETTINGS
    )
    assert from_sample["drifted_columns"] == from_whole["drifted_columns"] == ["x2"]


def test_a_small_training_set_is_kept_whole() -> None:
    frame = batch(300, seed=2)
    kept = reference_sample(frame, frame.index, [*FEATURES, "label", "x1"], seed=0)
    assert kept.equals(frame[[*FEATURES, "label"]])  # a name listed twice is kept once
