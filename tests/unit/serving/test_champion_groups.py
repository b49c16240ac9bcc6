"""Under split.groups the champion comparison resamples whole groups, like the split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks.evaluation.paired import bootstrap_weight_blocks
from tasks.serving.champion import split_note


def test_group_resamples_weigh_every_row_of_a_group_alike() -> None:
    groups = np.repeat(np.array(["a", "b", "c", "d", "e"]), 4)
    [block] = bootstrap_weight_blocks(len(groups), 50, seed=3, groups=groups)
    assert block.shape == (50, 20)
    for name in "abcde":
        rows = block[:, groups == name]
        assert (rows == rows[:, :1]).all()
    assert (block.sum(axis=1) == 20).all()  # five groups of four drawn five times


def test_row_resamples_are_the_seeded_row_draws_without_groups() -> None:
    [plain] = bootstrap_weight_blocks(30, 10, seed=1)
    drawn = np.random.default_rng(1).integers(0, 30, size=(10, 30))
    expected = np.stack([np.bincount(row, minlength=30) for row in drawn])
    assert (plain == expected).all()


def test_a_champion_split_at_random_is_noted_against_a_group_split(tmp_path: Path) -> None:
    manifest = {"data": {"sha256": "abc"}, "seed": 1, "config": {"split": {"test_size": 0.2}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    same = {"data_sha256": "abc", "seed": 1, "test_size": 0.2, "split_groups": None}
    assert split_note(tmp_path, same) is None
    grouped = {**same, "split_groups": "patient_id"}
    assert "another split_groups" in (split_note(tmp_path, grouped) or "")
